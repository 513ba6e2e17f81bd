// The jobfn dashboard: a page of the REST API, nothing more. Every figure comes from the
// API with the person's token, so the page can see and do exactly what that token can.
// No framework, and no markup built from strings: every value is set as text.
"use strict";

const ROOT = new URL(".", location.href); // the function's root, under any path prefix
const STATES = ["SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED"];
const TERMINAL = new Set(["SUCCEEDED", "FAILED"]);
const HOLD_FOREVER = 253402300799; // _retention.HOLD_FOREVER: "held"
const PAGE_SIZE = 50;
const OVERVIEW_REFRESH_MS = 5000;
const JOB_REFRESH_MS = 2000;
// How long a finished job's page keeps reading its events (and logs) after first seeing it finished.
const FINISHED_EVENTS_SETTLE_MS = 30000;
const LOG_LINES = 200;
const TOKEN_KEY = "jobfn-token";

let refreshTimer = null; // the shown view's own refresh; replaced on every navigation

// --- small tools ---------------------------------------------------------------------------
function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  node.append(...children.flat().filter((child) => child !== null && child !== undefined).map(
    (child) => (child instanceof Node ? child : String(child))));
  return node;
}

function when(unixSeconds) {
  if (unixSeconds === null || unixSeconds === undefined) return "—";
  if (unixSeconds >= HOLD_FOREVER) return "held (never deleted until released)";
  return new Date(unixSeconds * 1000).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
}

function duration(fromSeconds, toSeconds) {
  if (!fromSeconds || !toSeconds) return "";
  const seconds = toSeconds - fromSeconds;
  return seconds < 120 ? `${seconds} s` : `${Math.round(seconds / 60)} min`;
}

function announce(text) {
  document.getElementById("status").textContent = text;
}

function stateBadge(state, id) {
  return el("span", { class: `state state-${state.toLowerCase()}`, id }, state);
}

function jobLink(name) {
  return el("a", { href: `#/jobs/${encodeURIComponent(name)}` }, name);
}

function keyValueTable(caption, values, emptyText) {
  const entries = Object.entries(values || {});
  if (entries.length === 0) return el("p", { class: "empty" }, `${caption}: ${emptyText}`);
  return el("table", { class: "pairs" }, el("caption", {}, caption),
    el("tbody", {}, entries.map(([key, value]) => el("tr", {},
      el("th", { scope: "row" }, key),
      el("td", {}, typeof value === "string" ? value : JSON.stringify(value))))));
}

function table(caption, headings, rows, attributes = {}) {
  return el("table", attributes, el("caption", {}, caption),
    el("thead", {}, el("tr", {}, headings.map((heading) => el("th", { scope: "col" }, heading)))),
    el("tbody", {}, rows));
}

function randomKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16)); // randomUUID needs https
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

// --- the API ------------------------------------------------------------------------------
class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || `the function answered ${status}`);
    this.status = status;
    this.problems = error.problems || [];
  }
}

async function api(path, { method = "GET", json, headers = {} } = {}) {
  const sent = new Headers(headers);
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) sent.set("Authorization", `Bearer ${token}`);
  let body;
  if (json !== undefined) {
    sent.set("Content-Type", "application/json");
    body = JSON.stringify(json);
  }
  const response = await fetch(new URL(path, ROOT), { method, headers: sent, body, cache: "no-store" });
  const type = response.headers.get("Content-Type") || "";
  const answer = type.includes("json") ? await response.json() : await response.text();
  if (!response.ok) {
    if (response.status === 401) showSignIn("Your token was refused or has expired: sign in again.");
    throw new ApiError(response.status, answer);
  }
  return answer;
}

function errorNote(error) {
  return el("p", { class: "error", role: "alert" }, error.message);
}

// --- sign-in ------------------------------------------------------------------------------
function showSignIn(why) {
  const section = document.getElementById("sign-in");
  if (why) document.getElementById("sign-in-why").textContent = why;
  section.hidden = false;
  document.getElementById("token").focus();
}

function setUpSignIn() {
  const signOut = document.getElementById("sign-out");
  signOut.hidden = !sessionStorage.getItem(TOKEN_KEY);
  document.getElementById("sign-in-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = document.getElementById("token");
    sessionStorage.setItem(TOKEN_KEY, input.value.trim());
    input.value = "";
    document.getElementById("sign-in").hidden = true;
    signOut.hidden = false;
    announce("Signed in");
    route();
  });
  signOut.addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    signOut.hidden = true;
    showSignIn("Signed out.");
  });
  // The API description is public: it says whether requests need a token.
  api("openapi.json").then((document_) => {
    if (document_.security && !sessionStorage.getItem(TOKEN_KEY)) showSignIn();
  }).catch(() => {});
}

// --- routing ------------------------------------------------------------------------------
function route() {
  clearInterval(refreshTimer);
  refreshTimer = null;
  const [path, query] = (location.hash.slice(1) || "/").split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  const main = document.getElementById("main");
  main.replaceChildren();
  if (parts[0] === "jobs" && parts[1]) showJob(main, parts[1]);
  else if (parts[0] === "definitions") showDefinitions(main, parts[1]);
  else showOverview(main, new URLSearchParams(query || ""));
}

function focusHeading(main) {
  const heading = main.querySelector("h1");
  if (heading) {
    heading.setAttribute("tabindex", "-1");
    heading.focus();
  }
}

function every(milliseconds, refresh) {
  // A refresh slower than the interval (a namespace of many jobs) is never stacked on itself.
  let running = false;
  refreshTimer = setInterval(async () => {
    if (running) return;
    running = true;
    try {
      await refresh();
    } finally {
      running = false;
    }
  }, milliseconds);
}

// --- overview -----------------------------------------------------------------------------
const FILTERS = ["definition", "queue", "state", "labels", "name_prefix"];

function countsTable(caption, groups, groupHeading, filterName, id) {
  const names = Object.keys(groups);
  if (names.length === 0) return el("p", { class: "empty", id }, `${caption}: no jobs yet`);
  const rows = names.map((name) => {
    const counts = groups[name];
    const total = STATES.reduce((sum, state) => sum + counts[state], 0);
    return el("tr", {},
      el("th", { scope: "row" }, name || "(no queue)"),
      STATES.map((state) => {
        const filter = new URLSearchParams({ [filterName]: name, state });
        const cell = { "data-group": name, "data-state": state };
        return el("td", cell, counts[state]
          ? el("a", { href: `#/?${filter}`, "aria-label": `${counts[state]} ${state} in ${name || "no queue"}` },
            counts[state])
          : "0");
      }),
      el("td", { "data-group": name, "data-state": "total" }, total));
  });
  return table(caption, [groupHeading, ...STATES, "Total"], rows, { class: "counts", id });
}

function filterForm(filters, definitions) {
  const field = (name, label, control) => el("div", { class: "field" },
    el("label", { for: `filter-${name}` }, label), control);
  const select = (name, options) => el("select", { id: `filter-${name}`, name },
    el("option", { value: "" }, "any"),
    options.map((option) => el("option", { value: option, selected: filters.get(name) === option }, option)));
  const text = (name, placeholder) => el("input", {
    id: `filter-${name}`, name, type: "text", value: filters.get(name) || "", placeholder, spellcheck: "false",
  });
  const form = el("form", { class: "filters", role: "search", "aria-label": "Filter jobs" },
    field("definition", "Definition", select("definition", definitions)),
    field("queue", "Queue", text("queue", "e.g. main")),
    field("state", "State", select("state", STATES)),
    field("labels", "Labels", text("labels", "team=ml,tier=gold")),
    field("name_prefix", "Name starts with", text("name_prefix", "hello-")),
    el("div", { class: "buttons" },
      el("button", { type: "submit" }, "Filter"),
      el("button", { type: "button", onclick: () => { location.hash = "#/"; } }, "Clear")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const chosen = new URLSearchParams();
    for (const name of FILTERS) {
      const value = form.elements[name].value.trim();
      if (value) chosen.set(name, value);
    }
    location.hash = `#/?${chosen}`;
  });
  return form;
}

async function showOverview(main, filters) {
  document.title = "Jobs · jobfn";
  const summary = el("div", { class: "summary" }, el("p", {}, "Counting jobs…"));
  const listing = el("div", { class: "listing" });
  const autoRefresh = el("input", { type: "checkbox", id: "auto-refresh", checked: true });
  main.append(
    el("h1", {}, "Jobs"),
    el("p", { class: "refresh" }, autoRefresh, el("label", { for: "auto-refresh" }, " Refresh every 5 s")),
    summary);
  let definitions = [];
  try {
    definitions = (await api("definitions")).definitions.map((definition) => definition.name);
  } catch (error) {
    main.append(errorNote(error));
  }
  main.append(filterForm(filters, definitions), listing);
  focusHeading(main);

  const tokens = [null]; // the token of each page seen so far: back is one step up the list
  let page = 0;
  const query = new URLSearchParams({ limit: String(PAGE_SIZE) });
  for (const name of FILTERS) if (filters.get(name)) query.set(name, filters.get(name));

  async function showSummary() {
    try {
      const counts = await api("summary");
      summary.replaceChildren(
        el("p", { id: "total" }, `${counts.total} jobs`),
        countsTable("By definition", counts.definitions, "Definition", "definition", "by-definition"),
        countsTable("By queue", counts.queues, "Queue", "queue", "by-queue"));
    } catch (error) {
      summary.replaceChildren(errorNote(error));
    }
  }

  async function showPage() {
    if (tokens[page]) query.set("next_token", tokens[page]);
    else query.delete("next_token");
    let answer;
    try {
      answer = await api(`jobs?${query}`);
    } catch (error) {
      listing.replaceChildren(errorNote(error));
      return;
    }
    tokens[page + 1] = answer.next_token;
    const rows = answer.jobs.map((job) => el("tr", { "data-job": job.name },
      el("th", { scope: "row" }, jobLink(job.name)),
      el("td", {}, job.definition),
      el("td", {}, job.queue || "—"),
      el("td", {}, stateBadge(job.state)),
      el("td", {}, job.reason),
      el("td", {}, when(job.created)),
      el("td", {}, when(job.stopped))));
    const newer = el("button", { type: "button", disabled: page === 0 }, "← Newer");
    const older = el("button", { type: "button", disabled: !answer.next_token }, "Older →");
    newer.addEventListener("click", () => { page -= 1; showPage(); });
    older.addEventListener("click", () => { page += 1; showPage(); });
    const filtered = FILTERS.filter((name) => filters.get(name)).map((name) => `${name} ${filters.get(name)}`);
    listing.replaceChildren(
      rows.length
        ? table(`Jobs, newest first${filtered.length ? ` (${filtered.join(", ")})` : ""}`,
          ["Name", "Definition", "Queue", "State", "Reason", "Created", "Stopped"], rows, { id: "jobs" })
        : el("p", { class: "empty", id: "jobs" }, "No job matches."),
      el("nav", { class: "pager", "aria-label": "Pages" }, newer, el("span", {}, `page ${page + 1}`), older));
  }

  await Promise.all([showSummary(), showPage()]);
  every(OVERVIEW_REFRESH_MS, async () => {
    if (autoRefresh.checked) await Promise.all([showSummary(), showPage()]);
  });
}

// --- one job ------------------------------------------------------------------------------
function timeline(job) {
  const steps = [["Created", job.created], ["Started", job.started], ["Stopped", job.stopped]];
  return el("ol", { class: "timeline", "aria-label": "Timeline" }, steps.map(([label, time], index) =>
    el("li", { class: time ? "done" : "waiting" }, el("strong", {}, label), " ", when(time),
      index > 0 && time ? el("span", { class: "took" }, ` (+${duration(steps[index - 1][1], time)})`) : null)));
}

function attemptsTable(job) {
  const attempts = job.attempts || [];
  if (attempts.length === 0) return el("p", { class: "empty" }, "Attempts: none finished yet");
  return table("Attempts", ["Pod", "Container", "Exit code", "Reason", "Started", "Stopped"],
    attempts.map((attempt) => el("tr", {},
      el("td", {}, attempt.pod), el("td", {}, attempt.container),
      el("td", { class: "exit-code" }, attempt.exit_code ?? "—"),
      el("td", {}, [attempt.reason, attempt.message].filter(Boolean).join(": ")),
      el("td", {}, when(attempt.started)), el("td", {}, when(attempt.stopped)))), { id: "attempts" });
}

function podsTable(job) {
  const pods = job.pods || [];
  if (pods.length === 0) return el("p", { class: "empty" }, "Pods: none");
  return table("Pods", ["Pod", "Phase", "Node", "Index", "Containers"], pods.map((pod) => el("tr", {},
    el("td", {}, pod.name), el("td", {}, pod.phase), el("td", {}, pod.node || "—"),
    el("td", {}, pod.index ?? "—"),
    el("td", {}, pod.containers.map((c) => `${c.name}: ${c.state}${c.reason ? ` (${c.reason})` : ""}`).join(", ")))),
  { id: "pods" });
}

function eventsTable(events) {
  if (events.length === 0) return el("p", { class: "empty" }, "Events: none recorded");
  return table("Events", ["Time", "Type", "Object", "Reason", "Message"], events.map((event) => el("tr", {},
    el("td", {}, when(event.time)), el("td", {}, event.type), el("td", {}, event.object),
    el("td", {}, event.reason), el("td", {}, event.count > 1 ? `${event.message} (×${event.count})` : event.message))),
  { id: "events" });
}

function jobActions(job, reload) {
  const note = el("p", { class: "action-result", role: "alert" });
  const act = async (label, path, options) => {
    try {
      await api(path, options);
      announce(`${label}: done`);
      note.textContent = "";
      reload();
    } catch (error) {
      note.textContent = `${label} refused: ${error.message}`;
    }
  };
  const reason = el("input", { id: "terminate-reason", name: "reason", type: "text",
    value: "terminated from the dashboard", maxlength: 1024 });
  const terminate = el("form", { class: "inline", "aria-label": "Terminate" },
    el("label", { for: "terminate-reason" }, "Reason"), reason,
    el("button", { type: "submit", class: "danger", id: "terminate" }, "Terminate"));
  terminate.addEventListener("submit", (event) => {
    event.preventDefault();
    act("Terminate", `jobs/${encodeURIComponent(job.name)}/terminate`,
      { method: "POST", json: reason.value.trim() ? { reason: reason.value.trim() } : {} });
  });
  const hold = el("button", { type: "button", id: "hold" }, "Hold (keep until released)");
  hold.addEventListener("click", () =>
    act("Hold", `jobs/${encodeURIComponent(job.name)}/retention`, { method: "PUT", json: { hold: true } }));
  const held = job.deletion_time !== null && job.deletion_time >= HOLD_FOREVER;
  return el("section", { class: "actions", "aria-label": "Actions" },
    TERMINAL.has(job.state) ? null : terminate, held ? null : hold, note);
}

async function showJob(main, name) {
  document.title = `${name} · jobfn`;
  const header = el("div", { class: "job-header" });
  const body = el("div", { class: "job-body" });
  const events = el("div", { class: "events" });
  const logs = el("pre", { id: "logs", tabindex: "0", "aria-label": `Last ${LOG_LINES} log lines` });
  const logSource = el("select", { id: "log-source" });
  logSource.addEventListener("change", () => { finishedSince = null; refresh(); });
  main.append(el("p", {}, el("a", { href: "#/" }, "← All jobs")), el("h1", {}, name), header,
    el("section", { "aria-labelledby": "logs-title" }, el("h2", { id: "logs-title" }, "Logs"),
      el("p", {}, el("label", { for: "log-source" }, "Container "), logSource), logs),
    body,
    el("section", { "aria-labelledby": "events-title" }, el("h2", { id: "events-title" }, "Events"), events));
  focusHeading(main);
  let finishedSince = null; // when this page first saw the job finished

  function chooseLogSource(job) {
    // One option per pod and container; the reader's choice stays, else the running pod, else the newest try.
    const chosen = logSource.value;
    const options = (job.pods || []).flatMap((pod) => pod.containers.map((container) =>
      [`${pod.name}/${container.name}`, pod]));
    logSource.replaceChildren(...options.map(([value]) => el("option", { value }, value)));
    const running = options.find(([, pod]) => pod.phase === "Running");
    const lastAttempt = (job.attempts || []).at(-1);
    const newest = lastAttempt && options.find(([value]) => value.startsWith(`${lastAttempt.pod}/`));
    const pick = options.find(([value]) => value === chosen) || running || newest || options[0];
    if (pick) logSource.value = pick[0];
    return pick ? pick[0].split("/") : null;
  }

  async function refresh() {
    let job;
    try {
      job = await api(`jobs/${encodeURIComponent(name)}`);
    } catch (error) {
      header.replaceChildren(errorNote(error));
      return;
    }
    header.replaceChildren(
      el("p", {}, stateBadge(job.state, "job-state"), " ", el("span", { id: "job-reason" }, job.reason)),
      jobActions(job, refresh));
    body.replaceChildren(
      el("dl", { class: "facts" },
        el("dt", {}, "Definition"), el("dd", {}, el("a", { href: "#/definitions" }, job.definition)),
        el("dt", {}, "Queue"), el("dd", {}, job.queue || "—"),
        el("dt", {}, "Array size"), el("dd", {}, job.array_size ?? "—"),
        el("dt", {}, "Pods active / succeeded / failed"),
        el("dd", {}, `${job.counts.active} / ${job.counts.succeeded} / ${job.counts.failed}`),
        el("dt", {}, "Deletion time"), el("dd", { id: "deletion-time" }, job.deletion_time === null
          ? "not set yet (set when the job finishes)" : when(job.deletion_time))),
      timeline(job),
      (job.depends_on || []).length
        ? el("p", { id: "dependencies" }, "Depends on: ",
          job.depends_on.flatMap((dependency, index) => [index ? ", " : "",
            // a name, or {job, type: "N_TO_N"}: each child waits for the same child of that job
            typeof dependency === "string" ? jobLink(dependency)
              : [jobLink(dependency.job), ` (${dependency.type}: child by child)`]]))
        : null,
      keyValueTable("Arguments", job.arguments, "none"),
      keyValueTable("Overrides", job.overrides, "none"),
      keyValueTable("Tags", job.tags, "none"),
      keyValueTable("Labels", job.labels, "none"),
      attemptsTable(job),
      podsTable(job));
    // A finished job's logs no longer change, but its events still arrive for a while: the Job
    // controller records "Completed" after the status it reports, sent in the background.
    if (!TERMINAL.has(job.state)) finishedSince = null;
    else if (finishedSince === null) finishedSince = Date.now();
    else if (Date.now() - finishedSince > FINISHED_EVENTS_SETTLE_MS) return;
    try {
      events.replaceChildren(eventsTable((await api(`jobs/${encodeURIComponent(name)}/events`)).events));
    } catch (error) {
      events.replaceChildren(errorNote(error));
    }
    const source = chooseLogSource(job);
    if (!source) {
      logs.textContent = "(no pod yet)";
      finishedSince = null; // look again once a pod exists
      return;
    }
    try {
      const [pod, container] = source.map(encodeURIComponent);
      const text = await api(`jobs/${encodeURIComponent(name)}/logs?pod=${pod}&container=${container}&tail=${LOG_LINES}`);
      const atBottom = logs.scrollTop + logs.clientHeight >= logs.scrollHeight - 4;
      logs.textContent = text || "(no output yet)";
      if (atBottom) logs.scrollTop = logs.scrollHeight; // follow the tail unless the reader scrolled up
    } catch (error) {
      logs.textContent = error.message;
    }
  }

  await refresh();
  every(JOB_REFRESH_MS, refresh);
}

// --- definitions and the submit form ------------------------------------------------------
function parameterControl(definition, name, schema, required) {
  const id = `param-${definition}-${name}`;
  const common = { id, name, "aria-describedby": `${id}-help ${id}-problem`, required };
  const initial = schema.default;
  let control;
  if (Array.isArray(schema.enum)) {
    const blank = required || initial !== undefined ? null : el("option", { value: "" }, "(not given)");
    control = el("select", common, blank,
      schema.enum.map((choice) => el("option", { value: JSON.stringify(choice), selected: choice === initial },
        String(choice))));
  } else if (schema.type === "boolean") {
    control = el("input", { ...common, type: "checkbox", checked: initial === true, required: false });
  } else if (schema.type === "integer" || schema.type === "number") {
    control = el("input", { ...common, type: "number", step: schema.type === "integer" ? "1" : "any",
      min: schema.minimum, max: schema.maximum, value: initial ?? "" });
  } else if (schema.type === "string") {
    control = el("input", { ...common, type: "text", value: initial ?? "", spellcheck: "false" });
  } else {
    control = el("textarea", { ...common, rows: 3 }, initial === undefined ? "" : JSON.stringify(initial));
  }
  control.dataset.kind = Array.isArray(schema.enum) ? "enum" : schema.type || "json";
  const limits = [
    schema.type, schema.minimum !== undefined ? `≥ ${schema.minimum}` : null,
    schema.maximum !== undefined ? `≤ ${schema.maximum}` : null,
    schema.maxLength !== undefined ? `at most ${schema.maxLength} characters` : null,
    initial !== undefined ? `default ${JSON.stringify(initial)}` : null,
    required ? "required" : null,
  ].filter(Boolean).join(", ");
  return el("div", { class: "field", "data-parameter": name },
    el("label", { for: id }, name),
    control,
    el("small", { id: `${id}-help` }, [schema.description, limits].filter(Boolean).join(" — ")),
    el("p", { class: "problem", id: `${id}-problem` }));
}

function formArguments(form) {
  const values = {};
  for (const control of form.querySelectorAll("[data-kind]")) {
    const kind = control.dataset.kind;
    if (kind === "boolean") { values[control.name] = control.checked; continue; }
    const raw = control.value;
    if (raw === "") continue; // left empty: the definition's default applies
    if (kind === "integer" || kind === "number") values[control.name] = Number.isFinite(Number(raw)) ? Number(raw) : raw;
    else if (kind === "enum" || kind === "json") {
      try { values[control.name] = JSON.parse(raw); } catch { values[control.name] = raw; }
    } else values[control.name] = raw;
  }
  return values;
}

function showProblems(form, definition, problems) {
  const general = [];
  for (const control of form.querySelectorAll("[data-kind]")) control.removeAttribute("aria-invalid");
  for (const node of form.querySelectorAll(".problem")) node.textContent = "";
  for (const problem of problems) {
    const parameter = problem.split(/[.:]/, 1)[0].trim();
    const field = form.querySelector(`[data-parameter="${CSS.escape(parameter)}"]`);
    if (!field) { general.push(problem); continue; }
    const note = field.querySelector(".problem");
    note.textContent = note.textContent ? `${note.textContent}; ${problem}` : problem;
    field.querySelector("[data-kind]").setAttribute("aria-invalid", "true");
  }
  const summary = form.querySelector(".form-problems");
  summary.textContent = general.join("; ");
  const first = form.querySelector("[aria-invalid=true]");
  if (first) first.focus();
}

function submitForm(definition) {
  const schema = definition.parameters || {};
  const required = new Set(schema.required || []);
  const properties = Object.entries(schema.properties || {});
  let idempotencyKey = randomKey(); // a double click or a retry makes one job, not two
  const form = el("form", { class: "submit", "data-definition": definition.name, novalidate: true,
    "aria-label": `Submit ${definition.name}` },
  properties.length ? properties.map(([name, spec]) => parameterControl(definition.name, name, spec, required.has(name)))
    : el("p", { class: "empty" }, "No parameters."),
  el("p", { class: "form-problems", role: "alert" }),
  el("button", { type: "submit" }, `Submit ${definition.name}`));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const job = await api("jobs", { method: "POST", json: { definition: definition.name, arguments: formArguments(form) },
        headers: { "Idempotency-Key": idempotencyKey } });
      idempotencyKey = randomKey();
      announce(`Job ${job.name} submitted`);
      location.hash = `#/jobs/${encodeURIComponent(job.name)}`;
    } catch (error) {
      if (error.status === 409) idempotencyKey = randomKey(); // the form changed since the key's job
      showProblems(form, definition.name, error.problems.length ? error.problems : [error.message]);
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

async function showDefinitions(main, only) {
  document.title = "Definitions · jobfn";
  main.append(el("h1", {}, "Definitions"));
  focusHeading(main);
  let definitions;
  try {
    definitions = (await api("definitions")).definitions;
  } catch (error) {
    main.append(errorNote(error));
    return;
  }
  for (const definition of definitions.filter((d) => !only || d.name === only)) {
    const titleId = `definition-${definition.name}`;
    main.append(el("section", { class: "definition", "aria-labelledby": titleId },
      el("h2", { id: titleId }, definition.name),
      el("p", {}, definition.description || ""),
      el("p", { class: "facts-line" },
        `Overrides allowed: ${definition.allowed_overrides.join(", ") || "none"} · `,
        `at most ${definition.max_active_jobs ?? "any number of"} active jobs · `,
        el("a", { href: `#/?definition=${encodeURIComponent(definition.name)}` }, "its jobs")),
      el("details", {}, el("summary", {}, "Parameter schema"),
        el("pre", {}, JSON.stringify(definition.parameters, null, 2))),
      submitForm(definition)));
  }
}

// --- start --------------------------------------------------------------------------------
setUpSignIn();
window.addEventListener("hashchange", route);
route();
