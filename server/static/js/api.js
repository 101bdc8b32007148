// The query API, in one place: every URL, parameter and response shape the
// dashboard relies on lives here (server: server/routes_query.py and
// server/routes_artifacts.py, routes_projects.py, routes_teams.py, /api/v1).
// Reads send the API key when one is stored; public projects work without.

const BASE = "/api/v1";
const KEY_STORAGE = "trackline.apiKey";

export class ApiError extends Error {
  constructor(status, detail, body) {
    super(detail || `HTTP ${status}`);
    this.status = status;
    this.detail = detail;
    this.body = body;
  }
}

export function getKey() {
  try {
    return localStorage.getItem(KEY_STORAGE) || "";
  } catch {
    return "";
  }
}

export function setKey(key) {
  if (key) localStorage.setItem(KEY_STORAGE, key.trim());
  else localStorage.removeItem(KEY_STORAGE);
  window.dispatchEvent(new Event("trackline-key"));
}

function headers(extra) {
  const out = { Accept: "application/json", ...extra };
  const key = getKey();
  if (key) out.Authorization = `Bearer ${key}`;
  return out;
}

function url(path, query) {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query || {})) {
    if (value === undefined || value === null || value === "") continue;
    if (Array.isArray(value)) value.forEach((v) => params.append(name, String(v)));
    else params.append(name, String(value));
  }
  const qs = params.toString();
  return `${BASE}${path}${qs ? `?${qs}` : ""}`;
}

async function fail(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    /* not JSON */
  }
  const detail = body && typeof body.detail === "string" ? body.detail : response.statusText;
  throw new ApiError(response.status, detail, body);
}

async function request(method, path, { query, body, signal } = {}) {
  const init = { method, headers: headers(body !== undefined ? { "Content-Type": "application/json" } : {}), signal };
  if (body !== undefined) init.body = JSON.stringify(body);
  const response = await fetch(url(path, query), init);
  if (!response.ok) await fail(response);
  return response.json();
}

const seg = (s) => encodeURIComponent(s);
let apiPathsOnce = null;
/** "entity/name" -> "/projects/entity/name" */
const projectPath = (project) => {
  const [entity, ...rest] = project.split("/");
  return `/projects/${seg(entity)}/${seg(rest.join("/"))}`;
};

const reportPath = (project, slug) => `${projectPath(project)}/reports/${seg(slug)}`;

function seriesNumbers(data) {
  for (const panel of data.panels || []) {
    for (const s of panel.series || []) {
      if (s.kind !== "number") continue;
      numbers(s.x);
      numbers(s.y);
      numbers(s.min);
      numbers(s.max);
    }
  }
  return data;
}

/** The binary layout of downsampled series (server/series_wire.py). */
const SERIES_BINARY = "application/x-trackline-series";
const SERIES_ARRAYS = ["x", "y", "min", "max", "count"];

/**
 * A binary series answer as the JSON one reads: a uint32 header length, the JSON header,
 * padding to 8, then per numeric series x, y, min, max, count as float64 (n each).
 */
function decodeSeries(buffer) {
  const length = new DataView(buffer).getUint32(0, true);
  const head = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 4, length)));
  const base = 4 + length + ((8 - ((4 + length) % 8)) % 8);
  for (const s of head.series) {
    if (s.kind !== "number") continue;
    let at = base + s.offset;
    for (const name of SERIES_ARRAYS) {
      s[name] = Array.from(new Float64Array(buffer, at, s.n));
      at += 8 * s.n;
    }
    delete s.n;
    delete s.offset;
  }
  return head.series;
}

/** Floats JSON cannot hold come as "NaN", "Infinity", "-Infinity" (server/wire.py). */
function numbers(list) {
  if (!list) return list;
  for (let i = 0; i < list.length; i++) {
    const v = list[i];
    if (typeof v === "string") list[i] = Number(v);
  }
  return list;
}

export const api = {
  /** {name, admin, teams} for the stored key. */
  viewer: () => request("GET", "/viewer"),

  /** [{entity, name, path, public, created_at, updated_at, runs}] */
  projects: async () => (await request("GET", "/projects")).projects,

  /** {entity, name, path, public, created_at, updated_at, runs} */
  project: (project) => request("GET", projectPath(project)),

  /**
   * One page of a project's runs: {total, offset, limit, runs, groups?}.
   * q: {state: [..], tags: [..], search, where: ["config.lr<0.01"], sort: ["-summary.acc"],
   *     limit, offset, groupBy}. groups: [{value, count, runs: [ids]}] over all matches.
   */
  runs: (project, q = {}, signal) =>
    request("GET", `${projectPath(project)}/runs`, {
      signal,
      query: {
        state: q.state,
        tag: q.tags,
        search: q.search,
        where: q.where,
        sort: (q.sort || []).join(","),
        limit: q.limit ?? 100,
        offset: q.offset ?? 0,
        group_by: q.groupBy,
      },
    }),

  /**
   * Every matching run: a first page of 250 (shown at once), then the rest in pages of
   * 1000 (the server's maximum), fetched together; onPage(partial) after the first.
   */
  async allRuns(project, q = {}, signal, onPage) {
    const FIRST = 250;
    const first = await api.runs(project, { ...q, limit: FIRST, offset: 0 }, signal);
    const runs = first.runs.slice();
    if (onPage && first.total > runs.length) onPage({ ...first, runs });
    const pages = [];
    for (let offset = FIRST; offset < first.total; offset += 1000) {
      pages.push(api.runs(project, { ...q, limit: 1000, offset, groupBy: undefined }, signal));
    }
    for (const page of await Promise.all(pages)) runs.push(...page.runs);
    return { ...first, runs };
  },

  /** A run in detail: the list fields plus argv, git, environment, traceback, pid, starts. */
  run: (runId) => request("GET", `/runs/${seg(runId)}`),

  /**
   * The processes that write a run, rank 0 first: [{rank, host, pid, state, start_time,
   * last_time, end_time, exit_code, reason, rows, streams: {main, system, console}}].
   */
  writers: async (runId, signal) => (await request("GET", `/runs/${seg(runId)}/writers`, { signal })).writers,

  /** Change name, tags or notes; returns the run in detail. */
  patchRun: (runId, changes) => request("PATCH", `/runs/${seg(runId)}`, { body: changes }),

  /** {keys: [...], runs: {id: [keys]}, points: {key: count}} */
  metricKeys: (runIds, signal) => request("POST", "/metrics/keys", { body: { runs: runIds }, signal }),

  /**
   * Downsampled series: [{run, key, x_axis, kind, total, sampled, x, y, min, max, count}];
   * a fork's series has fork_step (its points up to there are its parent's), and with
   * rewound, a rewound run's hidden points come as entries with rewound: true.
   * x: "step" | "time" | "relative" | a metric key; range: [lo, hi] of x or null.
   */
  async series({ runs, keys, samples, x = "step", range = null, rewound = false }, signal) {
    const body = { runs, keys, samples, x };
    if (range) body.range = range;
    if (rewound) body.rewound = true; // also the points a rewind hid, as entries of their own
    const init = {
      method: "POST",
      headers: headers({ "Content-Type": "application/json", Accept: SERIES_BINARY }),
      body: JSON.stringify(body),
      signal,
    };
    const response = await fetch(url("/metrics/series"), init);
    if (!response.ok) await fail(response);
    return decodeSeries(await response.arrayBuffer());
  },

  // -- the trash -------------------------------------------------------------------

  /** Move runs of a project to its trash: {runs (those moved), purge_at}. */
  deleteRuns: (project, runIds) => request("POST", `${projectPath(project)}/runs/delete`, { body: { runs: runIds } }),

  deleteRun: (runId) => request("DELETE", `/runs/${seg(runId)}`),

  /** The project's deleted runs: [{...run, deleted_at, deleted_by, purge_at}]. */
  trash: async (project) => (await request("GET", `${projectPath(project)}/trash`)).runs,

  restoreRun: (runId) => request("POST", `/runs/${seg(runId)}/restore`),

  /** Delete a run in the trash for good. */
  purgeRun: (runId) => request("DELETE", `/runs/${seg(runId)}/trash`),

  // -- reports ---------------------------------------------------------------------

  /** [{slug, title, version, created_by, created_at, updated_by, updated_at}] */
  reports: async (project) => (await request("GET", `${projectPath(project)}/reports`)).reports,

  /** A report (or a version): {slug, title, version, project, body, blocks: [{index, kind, line, settings}], ...} */
  report: (project, slug, version) => request("GET", reportPath(project, slug), { query: { version } }),

  /** {title, body, slug?} -> the new report (version 1). */
  createReport: (project, body) => request("POST", `${projectPath(project)}/reports`, { body }),

  /** {title, body, base_version, force?} -> the saved report; 409 when base_version moved. */
  saveReport: (project, slug, body) => request("PUT", reportPath(project, slug), { body }),

  deleteReport: (project, slug) => request("DELETE", reportPath(project, slug)),

  /** [{version, title, author, created_at}], newest first */
  reportVersions: async (project, slug) => (await request("GET", `${reportPath(project, slug)}/versions`)).versions,

  restoreReport: (project, slug, version) => request("POST", `${reportPath(project, slug)}/versions/${version}/restore`),

  /** {report, runsets: [{name, colors, runs, missing, error?}], panels: [{index, series?, git?, run?, error?}]} */
  reportData: async (project, slug, version) => seriesNumbers(await request("GET", `${reportPath(project, slug)}/data`, { query: { version } })),

  /** The same as reportData, read through a share link's token (no API key needed). */
  sharedReport: async (token) => seriesNumbers(await request("GET", `/shared/${seg(token)}`)),

  /** A file a shared report's media panel `index` shows, as a Blob of `type`. */
  async sharedFile(token, index, path, type) {
    const response = await fetch(`${BASE}/shared/${seg(token)}/files/${index}/${path.split("/").map(seg).join("/")}`);
    if (!response.ok) await fail(response);
    const blob = await response.blob();
    return type ? new Blob([blob], { type }) : blob;
  },

  /** [{id, prefix, created_by, created_at, expires_at, revoked}] */
  shareLinks: async (project, slug) => (await request("GET", `${reportPath(project, slug)}/shares`)).shares,

  /** {id, token, ...}: the token is shown once. */
  createShareLink: (project, slug, expiresInDays) => request("POST", `${reportPath(project, slug)}/shares`, { body: { expires_in_days: expiresInDays ?? null } }),

  revokeShareLink: (project, slug, id) => request("DELETE", `${reportPath(project, slug)}/shares/${id}`),

  /** System samples: {steps, times, values: {key: [...]}, kinds}. */
  async system(runId, signal) {
    const out = await request("GET", `/runs/${seg(runId)}/system`, { signal });
    numbers(out.times);
    for (const [key, list] of Object.entries(out.values || {})) {
      if (out.kinds?.[key] === "number") numbers(list);
    }
    return out;
  },

  /** [{path, sha256, size, time, uploaded, kind?}] */
  files: async (runId) => (await request("GET", `/runs/${seg(runId)}/files`)).files,

  fileUrl: (runId, path) => `${BASE}/runs/${seg(runId)}/files/${path.split("/").map(seg).join("/")}`,

  /** A run's file as a Blob (with the API key, so private files download too). */
  async fileBlob(runId, path) {
    const response = await fetch(api.fileUrl(runId, path), { headers: headers() });
    if (!response.ok) await fail(response);
    return response.blob();
  },

  /**
   * A run's media records, oldest first: [{key, step, time, kind, items}]. kind: "image",
   * "histogram", "table", "audio", "video", ...; items: descriptions (core/media.py), each
   * with path and sha256 (a file of the run) except a histogram's ({counts, edges}).
   * Records a rewind hid come only with rewound, marked rewound: true.
   */
  media: async (runId, key, signal, rewound = false) =>
    (await request("GET", `/runs/${seg(runId)}/media`, { query: { key, rewound: rewound ? "true" : undefined }, signal })).media,

  /**
   * Histograms logged by trackline.watch: [{key, step, time, edges, counts}]. With
   * rewound (as media), also those a rewind hid, marked rewound: true.
   */
  async histograms(runId, key, signal, rewound = false) {
    const out = (await request("GET", `/runs/${seg(runId)}/histograms`, { query: { key, rewound: rewound ? "true" : undefined }, signal })).histograms;
    for (const hist of out) {
      numbers(hist.edges);
      numbers(hist.counts);
    }
    return out;
  },

  /**
   * A media item's bytes as a Blob of the given MIME type (the server sends
   * application/octet-stream; the type lets <img>/<audio>/<video> decode it).
   */
  async mediaBlob(runId, item, type, signal) {
    const response = await fetch(api.fileUrl(runId, item.path), { headers: headers(), signal });
    if (!response.ok) await fail(response);
    const blob = await response.blob();
    return type ? new Blob([blob], { type }) : blob;
  },

  /** The API's paths (from its OpenAPI document, fetched once): what this server offers. */
  apiPaths() {
    apiPathsOnce ??= fetch(`${BASE}/openapi.json`, { headers: { Accept: "application/json" } })
      .then((r) => (r.ok ? r.json() : { paths: {} }))
      .then((doc) => new Set(Object.keys(doc.paths || {}).map((p) => p.replace(BASE, ""))))
      .catch(() => new Set());
    return apiPathsOnce;
  },

  /**
   * Wait up to `timeout` seconds for a change feed (a path from api.feeds) to move past
   * `since`: {cursor, changed}. Without `since`, the current cursor at once.
   */
  changes: (path, since, timeout, signal) => request("GET", path, { query: { since, timeout }, signal }),

  /** The change feeds (server/routes_live.py): {path, template} for live.js's follow(). */
  feeds: {
    project: (project) => ({ path: `${projectPath(project)}/changes`, template: "/projects/{entity}/{project}/changes" }),
    run: (runId) => ({ path: `/runs/${seg(runId)}/changes`, template: "/runs/{run_id}/changes" }),
  },

  /** Path of the JSON view of a logged table; used only where the server offers it. */
  TABLE_ROWS_PATH: "/runs/{run_id}/media/{sha256}/table",

  /**
   * Rows of a trackline.Table as JSON: {columns, types?, total, offset, rows: [[cell, ...]]}.
   * Not in every server: check api.apiPaths() for TABLE_ROWS_PATH first.
   */
  tableRows: (runId, sha256, { offset = 0, limit = 100 } = {}, signal) =>
    request("GET", `/runs/${seg(runId)}/media/${seg(sha256)}/table`, { query: { offset, limit }, signal }),

  // -- artifacts (server/routes_artifacts.py) ----------------------------------------------

  /** [{name, type, path, versions (a count), aliases: {alias: "vN"}, created_at, updated_at}] */
  artifacts: async (project, signal) => (await request("GET", `${projectPath(project)}/artifacts`, { signal })).artifacts,

  /**
   * An artifact's versions, oldest first: {name, type, path, versions: [{name, type, path,
   * version, digest, aliases, metadata, description, size, file_count, producer (run id or
   * null), created_at}]}.
   */
  artifact: (project, name, signal) => request("GET", `${projectPath(project)}/artifacts/${seg(name)}`, { signal }),

  /**
   * One version by "vN" or alias: the fields above plus files: [{path, sha256, size,
   * uploaded}], references: {name: uri}, complete.
   */
  artifactVersion: (project, name, ref, signal) =>
    request("GET", `${projectPath(project)}/artifacts/${seg(name)}/${seg(ref)}`, { signal }),

  /**
   * {path, version, producer: {id, name, project} | null, consumers: [{id, name, project}]}:
   * only the runs the caller may read.
   */
  artifactLineage: (project, name, ref, signal) =>
    request("GET", `${projectPath(project)}/artifacts/${seg(name)}/${seg(ref)}/lineage`, { signal }),

  /** Versions a run logged and used: {logged: [ref], used: [ref]}, ref: {path, name, type, version, digest}. */
  runArtifacts: (runId, signal) => request("GET", `/runs/${seg(runId)}/artifacts`, { signal }),

  /**
   * Content by sha256 of an artifact version ("entity/project/name:vN") as a Blob, with the
   * API key; the server answers only through a version (or run) that has the content.
   */
  async blob(sha256, artifact) {
    const response = await fetch(url(`/blobs/${seg(sha256)}`, { artifact }), { headers: headers() });
    if (!response.ok) await fail(response);
    return response.blob();
  },

  historyUrl: (runId, format) => url(`/runs/${seg(runId)}/history`, { format }),

  async historyBlob(runId, format) {
    const response = await fetch(api.historyUrl(runId, format), { headers: headers() });
    if (!response.ok) await fail(response);
    return response.blob();
  },

  // -- the caller's dashboard settings (server/routes_views.py) ---------------------------

  /** {settings, updated_at}: the caller's saved settings for a project ({} when none); 401 without a key. */
  view: (project, signal) => request("GET", `${projectPath(project)}/view`, { signal }),

  /** Replace the caller's settings for a project with `settings` (a JSON object, at most 256 KiB). */
  saveView: (project, settings, { keepalive = false } = {}) =>
    fetch(url(`${projectPath(project)}/view`), {
      method: "PUT",
      headers: headers({ "Content-Type": "application/json" }),
      body: JSON.stringify(settings),
      keepalive, // a save as the page goes away still reaches the server
    }).then((response) => (response.ok ? response.json() : fail(response))),

  /** Forget the caller's settings for a project (reset to default): an empty document. */
  resetView: (project) => api.saveView(project, {}),
  /**
   * Console lines of a run numbered above `after` (a cursor): {lines: [{line, stream, time,
   * error, text}], next (the cursor for the page after), more, total}. text keeps ANSI codes.
   * q: case-insensitive substring; level: "error" for stderr and error lines only.
   */
  logs: (runId, { after = -1, limit = 1000, q, level } = {}, signal) =>
    request("GET", `/runs/${seg(runId)}/logs`, { query: { after, limit, q, level }, signal }),

  /** The whole console as text (a Blob); ansi=false strips the colour codes. */
  async logsBlob(runId, ansi = true) {
    const response = await fetch(url(`/runs/${seg(runId)}/logs.txt`, { ansi }), { headers: headers() });
    if (!response.ok) await fail(response);
    return response.blob();
  },

  // -- project settings (server/routes_projects.py) ---------------------------------------

  /** Change `public` and/or `name`: {entity, name, public}; 409 when the name is taken. */
  patchProject: (project, changes) => request("PATCH", projectPath(project), { body: changes }),

  /** Give the project to a team the caller administers: the project as it is now (new path). */
  transferProject: (project, team) => request("POST", `${projectPath(project)}/transfer`, { body: { to: team } }),

  /** Delete a project and its runs: {deleted, runs}; `confirm` must repeat "entity/name". */
  deleteProject: (project, confirm) => request("DELETE", projectPath(project), { query: { confirm } }),

  // -- teams and users (server/routes_teams.py, server/routes_users.py) ---------------------

  /** [{name, role, members, projects}]: the caller's teams (every team for an admin; role null). */
  teams: async () => (await request("GET", "/teams")).teams,

  /** {name, role, members: [{user, role}], projects: [project]}; 404 for a team the caller is not in. */
  team: (team) => request("GET", `/teams/${seg(team)}`),

  /** Create a team managed by the caller: {name}. */
  createTeam: (name) => request("POST", "/teams", { body: { name } }),

  /** Add a user to a team or change its role ("member" | "admin"): {team, user, role}. */
  setMember: (team, user, role) => request("POST", `/teams/${seg(team)}/members`, { body: { user, role } }),

  /** Take a user out of a team: {team, user}; 409 for the team's last admin. */
  removeMember: (team, user) => request("DELETE", `/teams/${seg(team)}/members/${seg(user)}`),

  /** Admin: [{name, admin, deactivated, deactivated_at, keys, created_at}]. */
  users: async () => (await request("GET", "/users")).users,

  /** Admin: a new user and its first API key, {name, api_key} (the key is shown only now). */
  createUser: (name, admin) => request("POST", "/users", { body: { name, admin } }),

  /** Admin: {name, deactivated}; a deactivated user's keys are refused until reactivated. */
  setDeactivated: (user, deactivated) => request("POST", `/users/${seg(user)}/${deactivated ? "deactivate" : "reactivate"}`),

  /** A user's keys (another user's: admin), [{id, prefix, created_at}]. */
  keys: async (user) => (await request("GET", "/keys", { query: { user } })).keys,

  /** A new key for a user (another user's: admin): {id, name, api_key}, the key shown once. */
  createKeyFor: (user) => request("POST", "/keys", { query: { user } }),

  /** Revoke a key by id: {revoked}; 409 for a user's last key or the key of this request. */
  revokeKey: (id) => request("DELETE", `/keys/${seg(String(id))}`),
};

/** Save a Blob under a file name (through a temporary object URL). */
export function saveBlob(blob, name) {
  const href = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = href;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(href), 10_000);
}
