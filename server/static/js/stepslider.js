// A step slider for media panels: a range over the steps a key was logged at (an
// index into them, so uneven steps are evenly spaced), with previous/next buttons and
// the step shown. Follows the newest step while it sits at the end (live runs).

import { h, icon } from "./util/dom.js";
import { fmtNumber } from "./util/format.js";

const PREV = ["M15 6l-6 6 6 6"];
const NEXT = ["M9 6l6 6-6 6"];

export class StepSlider {
  /** steps: sorted step numbers; onChange(index, step) when the user moves it. */
  constructor(steps, onChange, label = "Step") {
    this.steps = steps;
    this.index = Math.max(0, steps.length - 1);
    this.onChange = onChange;
    this.range = h("input", {
      class: "step-range",
      type: "range",
      name: "step",
      min: "0",
      step: "1",
      attrs: { "aria-label": label },
      on: { input: () => this.choose(Number(this.range.value)) },
    });
    this.prev = h("button", { class: "icon-btn", type: "button", title: "Previous step", attrs: { "aria-label": "Previous step" }, on: { click: () => this.choose(this.index - 1) } }, icon(PREV, 14));
    this.next = h("button", { class: "icon-btn", type: "button", title: "Next step", attrs: { "aria-label": "Next step" }, on: { click: () => this.choose(this.index + 1) } }, icon(NEXT, 14));
    this.value = h("span", { class: "step-value" });
    this.el = h("div", { class: "step-slider" }, h("span", { class: "step-label muted", text: label }), this.prev, this.range, this.next, this.value);
    this.sync();
  }

  get step() {
    return this.steps[this.index];
  }

  /** Move to an index (clamped) and tell the owner. */
  choose(index) {
    const next = Math.min(Math.max(0, index), this.steps.length - 1);
    if (next === this.index && Number(this.range.value) === next) return;
    this.index = next;
    this.sync();
    this.onChange(this.index, this.step);
  }

  /** New steps (a live run): keeps the chosen step, or the newest if it was at the end. */
  setSteps(steps) {
    const atEnd = this.index >= this.steps.length - 1;
    const current = this.step;
    this.steps = steps;
    const found = steps.indexOf(current);
    this.index = atEnd || found < 0 ? Math.max(0, steps.length - 1) : found;
    this.sync();
  }

  sync() {
    const n = this.steps.length;
    this.range.max = String(Math.max(0, n - 1));
    this.range.value = String(this.index);
    // One step: no control to move, just the step.
    this.range.hidden = this.prev.hidden = this.next.hidden = n < 2;
    this.prev.disabled = this.index <= 0;
    this.next.disabled = this.index >= n - 1;
    this.value.textContent = n ? `${fmtNumber(this.step)}${n > 1 ? `  (${this.index + 1}/${n})` : ""}` : "";
    this.el.dataset.step = n ? String(this.step) : "";
  }
}
