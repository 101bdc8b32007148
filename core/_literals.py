"""The closed sets of words the API takes and returns, as types (one place for each)."""

from __future__ import annotations

from typing import Literal

#: ``trackline.init(mode=...)``.
Mode = Literal["online", "offline", "disabled"]
#: ``trackline.init(resume=...)``: W&B's words, ``True`` meaning ``"allow"``.
Resume = Literal["allow", "must", "never", "auto"] | bool
#: ``run.save(..., policy=...)``.
SavePolicy = Literal["now", "live", "end"]
#: ``run.state``: ``running``, then how it ended.
RunState = Literal["running", "finished", "failed", "killed", "crashed"]
