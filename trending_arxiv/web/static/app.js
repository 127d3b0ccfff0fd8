// Trending arXiv page: plain JavaScript, no build step.
// Every piece of data goes into the DOM through textContent or attributes, never
// innerHTML, so a post containing markup shows as text.
"use strict";

const PAGE_SIZE = 20;
const WINDOWS = ["1h", "24h", "7d", "30d", "all"];
const SORTS = ["posts", "accounts", "score", "date", "field", "relevance"];
const SOURCE_NAMES = { x: "X", bluesky: "Bluesky", mastodon: "Mastodon" };
const SVG_NS = "http://www.w3.org/2000/svg";

const state = {
  window: "all",
  sort: "date",
  category: "",
  q: "",
  user: "",
  as_of: "",
  half_life: "", // trend score half-life in hours ("" = the stream's own)
  offset: 0,
  loading: 0, // generation counter: a stale response is ignored
  sparkEnd: "", // the end of the shared sparkline axis (ISO), for the whole list
};
const SPARK_HOURS = 168;

const $ = (id) => document.getElementById(id);

function readUrl() {
  const params = new URLSearchParams(location.search);
  const win = params.get("window");
  const sort = params.get("sort");
  state.window = WINDOWS.includes(win) ? win : "all";
  state.q = (params.get("q") || "").trim();
  state.sort = SORTS.includes(sort) ? sort : state.q ? "relevance" : "date";
  state.category = params.get("category") || "";
  state.user = (params.get("user") || "").trim();
  state.as_of = params.get("as_of") || "";
  const halfLife = Number(params.get("half_life"));
  state.half_life = halfLife > 0 && halfLife <= 720 ? String(halfLife) : "";
}

function writeUrl() {
  const params = new URLSearchParams();
  params.set("window", state.window);
  params.set("sort", state.sort);
  for (const key of ["category", "q", "user", "as_of", "half_life"]) {
    if (state[key]) params.set(key, state[key]);
  }
  history.replaceState(null, "", "?" + params.toString());
}

function apiUrl() {
  const params = new URLSearchParams({
    window: state.window,
    limit: String(PAGE_SIZE),
    offset: String(state.offset),
  });
  if (state.category) params.set("category", state.category);
  let path;
  if (state.q) {
    path = "api/search";
    params.set("q", state.q);
    params.set("sort", state.sort === "field" ? "relevance" : state.sort);
    if (state.user) params.set("user", state.user);
  } else {
    path = state.user ? "api/users/" + encodeURIComponent(state.user) + "/trending" : "api/trending";
    params.set("sort", state.sort === "relevance" ? "posts" : state.sort);
    if (state.as_of) params.set("as_of", state.as_of);
    if (state.half_life && state.sort === "score") params.set("half_life_hours", state.half_life);
  }
  return path + "?" + params.toString();
}

// The feeds of the view shown: the list's parameters, without paging.
function feedQuery() {
  const params = new URLSearchParams({ window: state.window });
  if (state.q) {
    params.set("q", state.q);
    params.set("sort", state.sort === "field" ? "relevance" : state.sort);
  } else {
    params.set("sort", state.sort === "relevance" ? "posts" : state.sort);
    if (state.user) params.set("user", state.user);
    if (state.as_of) params.set("as_of", state.as_of);
  }
  if (state.category) params.set("category", state.category);
  return params.toString();
}

function syncFeedLinks() {
  const query = feedQuery();
  for (const [id, kind] of [["feed-atom", "atom"], ["feed-atom-link", "atom"],
                            ["feed-rss", "rss"], ["feed-rss-link", "rss"]]) {
    const node = $(id);
    if (node) node.href = "feeds/trending." + kind + "?" + query;
  }
}

function setStatus(text, isError) {
  const status = $("status");
  status.textContent = text;
  status.classList.toggle("error", Boolean(isError));
}

function formatDate(value) {
  if (!value) return "";
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return "";
  return date.toISOString().slice(0, 10);
}

function authorsText(authors) {
  if (!Array.isArray(authors) || authors.length === 0) return "";
  if (authors.length <= 8) return authors.join(", ");
  return authors.slice(0, 7).join(", ") + " and " + (authors.length - 7) + " more";
}

function windowLabel() {
  return state.window === "all" ? "" : " in the last " + state.window;
}

function renderPaper(paper) {
  const node = $("paper-template").content.firstElementChild.cloneNode(true);
  const id = String(paper.arxiv_id || "");
  node.dataset.arxivId = id;
  const link = node.querySelector(".title-link");
  link.textContent = paper.title || "arXiv:" + id + " (metadata pending)";
  const abs = safeHref(paper.abs_url) || "https://arxiv.org/abs/" + encodeURIComponent(id).replace("%2F", "/");
  link.href = abs;
  const idLink = node.querySelector(".arxiv-id");
  idLink.textContent = "arXiv:" + id;
  idLink.href = "papers/" + id.split("/").map(encodeURIComponent).join("/");
  idLink.title = "Counts, timeline and posts of this paper";
  const cats = node.querySelector(".cats");
  const categories = Array.isArray(paper.categories) && paper.categories.length
    ? paper.categories
    : paper.primary_category ? [paper.primary_category] : [];
  for (const category of categories.slice(0, 4)) {
    const button = el("button", "cat", category);
    button.type = "button";
    button.title = "Only " + category;
    button.addEventListener("click", () => {
      state.category = category;
      $("category").value = category;
      reload();
    });
    cats.append(button);
  }
  const date = formatDate(paper.published);
  node.querySelector(".date").textContent = date ? "submitted " + date : "";
  node.querySelector(".authors").textContent = authorsText(paper.authors);
  const abstract = node.querySelector(".abstract");
  abstract.textContent = paper.abstract || "";
  abstract.addEventListener("click", () => abstract.classList.toggle("open"));
  abstract.title = "Click to show the whole abstract";
  const posts = Number(paper.posts || 0);
  node.dataset.posts = String(posts);
  const accounts = Number(paper.accounts || 0);
  node.querySelector(".count").textContent = "Captured tweets and retweets: " + posts;
  node.querySelector(".accounts").textContent =
    accounts + (accounts === 1 ? " distinct account" : " distinct accounts") + windowLabel();
  if (paper.field_percentile !== undefined) {
    // The `field` sort: where this paper stands among its field's papers (see "How ranking works").
    node.querySelector(".accounts").textContent +=
      " · percentile " + Number(paper.field_percentile).toFixed(0) + " of " + paper.field +
      " (" + paper.field_papers + " papers)";
  }
  const pdf = node.querySelector(".pdf");
  const pdfHref = safeHref(paper.pdf_url);
  if (pdfHref) pdf.href = pdfHref;
  else pdf.remove();
  const details = node.querySelector("details.posts");
  const allPosts = Number((paper.posts_by_window || {}).all || posts);
  details.querySelector("summary").textContent =
    allPosts === 1 ? "Show the post" : "Show the " + allPosts + " posts";
  details.addEventListener("toggle", () => {
    if (details.open && !details.dataset.loaded) {
      details.dataset.loaded = "1";
      loadPosts(id, details.querySelector(".post-list"));
    }
  });
  return node;
}

function renderPost(post) {
  const item = el("li", "post");
  const head = el("div", "post-head");
  const source = SOURCE_NAMES[post.source] || String(post.source || "");
  head.append(el("span", "source source-" + String(post.source || "other"), source));
  head.append(el("span", "handle", post.author_handle ? "@" + post.author_handle : "(unknown account)"));
  // The id follow lists take (x:123, did:plc:...), next to the handle people know.
  if (post.account) head.append(el("span", "account-id", post.account));
  if (post.kind && post.kind !== "original" && post.kind !== "post") {
    head.append(el("span", "kind", post.kind));
  }
  const when = formatTime(post["@timestamp"]);
  const href = safeHref(post.url);
  if (href) {
    const link = el("a", "when", when || "view");
    link.href = href;
    link.rel = "noopener noreferrer";
    link.target = "_blank";
    link.title = "Open on " + source;
    head.append(link);
  } else {
    head.append(el("span", "when", when));
  }
  item.append(head);
  item.append(el("p", "post-text", post.text || ""));
  return item;
}

async function loadPosts(arxivId, list) {
  list.replaceChildren(el("li", "muted", "Loading posts…"));
  try {
    const params = new URLSearchParams({ posts_limit: "50" });
    if (state.as_of) params.set("as_of", state.as_of);
    const detail = await getJson("api/papers/" + arxivId + "?" + params.toString());
    const posts = Array.isArray(detail.posts) ? detail.posts : [];
    list.replaceChildren();
    if (posts.length === 0) list.append(el("li", "muted", "No posts stored."));
    for (const post of posts) list.append(renderPost(post));
    const total = Number(detail.mentions_total || 0);
    if (total > posts.length) {
      list.append(el("li", "muted", "… and " + (total - posts.length) + " more"));
    }
  } catch (error) {
    list.replaceChildren(el("li", "error", "Could not load the posts: " + error.message));
  }
}

function hourLabel(ms) {
  const date = new Date(ms);
  return date.toISOString().slice(5, 10) + " " + date.toISOString().slice(11, 13) + "h";
}

// Every sparkline covers the same hours (state.sparkEnd back SPARK_HOURS), so papers can
// be compared: the x axis is shared and labelled, the y axis runs from 0 to the paper's
// own peak, which is written next to it.
function sparkline(counts, end) {
  const width = 200;
  const height = 46;
  const plotTop = 4;
  const plotHeight = 26;
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("viewBox", "0 0 " + width + " " + height);
  svg.setAttribute("width", String(width));
  svg.setAttribute("height", String(height));
  svg.setAttribute("class", "sparkline");
  svg.setAttribute("role", "img");
  const endMs = new Date(end).getTime();
  const startMs = endMs - (counts.length - 1) * 3600 * 1000;
  svg.dataset.start = new Date(startMs).toISOString();
  svg.dataset.end = new Date(endMs).toISOString();
  const total = counts.reduce((a, b) => a + b, 0);
  const peak = Math.max(0, ...counts);
  svg.dataset.peak = String(peak);
  const title = document.createElementNS(SVG_NS, "title");
  title.textContent =
    total + " mentions in the " + counts.length + " hours up to " + formatTime(end) +
    " (peak " + peak + " in one hour)";
  svg.append(title);
  const scale = Math.max(1, peak);
  const step = counts.length > 1 ? width / (counts.length - 1) : width;
  const baseline = plotTop + plotHeight;
  const points = counts.map((count, i) => {
    const x = (i * step).toFixed(1);
    const y = (baseline - (count / scale) * plotHeight).toFixed(1);
    return x + "," + y;
  });
  const axis = document.createElementNS(SVG_NS, "line");
  axis.setAttribute("x1", "0");
  axis.setAttribute("x2", String(width));
  axis.setAttribute("y1", String(baseline + 0.5));
  axis.setAttribute("y2", String(baseline + 0.5));
  axis.setAttribute("class", "spark-axis");
  const area = document.createElementNS(SVG_NS, "polygon");
  area.setAttribute("points", "0," + baseline + " " + points.join(" ") + " " + width + "," + baseline);
  area.setAttribute("class", "spark-area");
  const line = document.createElementNS(SVG_NS, "polyline");
  line.setAttribute("points", points.join(" "));
  line.setAttribute("class", "spark-line");
  svg.append(area, line, axis);
  const text = (x, y, anchor, cls, value) => {
    const node = document.createElementNS(SVG_NS, "text");
    node.setAttribute("x", String(x));
    node.setAttribute("y", String(y));
    node.setAttribute("text-anchor", anchor);
    node.setAttribute("class", cls);
    node.textContent = value;
    svg.append(node);
  };
  text(0, height - 2, "start", "spark-tick", hourLabel(startMs));
  text(width, height - 2, "end", "spark-tick", hourLabel(endMs));
  const peakAt = counts.indexOf(peak);
  if (peak > 0) {
    const x = Math.min(width - 2, Math.max(2, peakAt * step));
    const mark = document.createElementNS(SVG_NS, "circle");
    mark.setAttribute("cx", x.toFixed(1));
    mark.setAttribute("cy", String(plotTop));
    mark.setAttribute("r", "1.8");
    mark.setAttribute("class", "spark-mark");
    svg.append(mark);
  }
  return svg;
}

// The shared axis ends at the moment the counts are for (asked for, or the stream's
// time the API answers with), else at the newest post of any paper in the list (a
// search has no moment); a paper active long ago shows as quiet at the end, as it is.
function sparkEndFor(papers, countsAsOf) {
  if (state.as_of) return state.as_of;
  if (countsAsOf) return countsAsOf;
  let newest = state.sparkEnd ? new Date(state.sparkEnd).getTime() : 0;
  for (const paper of papers) {
    const seen = new Date(paper.last_seen || 0).getTime();
    if (!Number.isNaN(seen) && seen > newest) newest = seen;
  }
  return newest ? new Date(newest).toISOString() : "";
}

async function loadSparklines(nodes, generation) {
  const ids = nodes.map((node) => node.dataset.arxivId).filter(Boolean);
  if (ids.length === 0 || !state.sparkEnd) return;
  const end = state.sparkEnd;
  const params = new URLSearchParams({ ids: ids.join(","), hours: String(SPARK_HOURS), as_of: end });
  if (state.user && !state.q) params.set("user", state.user); // as the ranking counts
  try {
    const body = await getJson("api/sparklines?" + params.toString());
    if (generation !== state.loading || end !== state.sparkEnd) return;
    for (const node of nodes) {
      const series = body.series[node.dataset.arxivId];
      if (!series) continue;
      const peak = Math.max(0, ...series.counts);
      const holder = node.querySelector(".spark");
      holder.replaceChildren(
        sparkline(series.counts, series.end),
        el("span", "spark-peak", "peak " + peak + "/h"),
      );
    }
    const axis = $("spark-axis");
    const whose = state.user && !state.q ? " by accounts " + state.user + " follows" : "";
    axis.textContent =
      "Sparklines: mentions per hour" + whose + " over the same " + SPARK_HOURS / 24 +
      " days for every paper, up to " +
      formatTime(body.series[ids[0]] ? body.series[ids[0]].end : end) + "; each from 0 to its own peak.";
  } catch (_) {
    // Sparklines are decoration: the list stays usable without them.
  }
}

function describe(count) {
  const parts = [];
  if (state.q) parts.push("matching “" + state.q + "”");
  if (state.user && state.q) {
    // Search keeps each paper's counts over all accounts; only the list is the user's.
    parts.push("among the papers accounts " + state.user + " follows posted (counts from all accounts)");
  } else if (state.user) {
    parts.push("posted by accounts " + state.user + " follows");
  }
  if (state.category) parts.push("in " + state.category);
  parts.push(state.window === "all" ? "all time" : "last " + state.window);
  return count + (count === 1 ? " paper " : " papers ") + parts.join(", ");
}

// The moment every window ends at: the one picked, else the stream's time (the API says).
function showClock(asOf) {
  const when = asOf ? formatTime(asOf) : "";
  $("clock").textContent = when
    ? "Counts as of " + when + (state.as_of ? " (picked)" : " (the stream's time)")
    : "";
}

// A datetime-local value ("2016-02-09T12:00") read as UTC, and back.
function asOfFromInput(value) {
  return value ? value.slice(0, 16) + ":00Z" : "";
}

function inputFromAsOf(value) {
  const date = new Date(value);
  return value && !Number.isNaN(date.getTime()) ? date.toISOString().slice(0, 16) : "";
}

async function load(append) {
  const generation = ++state.loading;
  if (!append) {
    state.offset = 0;
    state.sparkEnd = "";
    $("papers").replaceChildren();
    // Emptied, not hidden: its line keeps its place, so the list never moves down when
    // the sparklines (and this legend) arrive after the cards.
    $("spark-axis").textContent = "";
  }
  $("more").hidden = true;
  document.body.classList.add("busy");
  setStatus("Loading…");
  try {
    const body = await getJson(apiUrl());
    if (generation !== state.loading) return;
    const papers = Array.isArray(body.papers) ? body.papers : [];
    if (!append) showClock(body.as_of);
    const nodes = papers.map(renderPaper);
    $("papers").append(...nodes);
    const shown = $("papers").children.length;
    setStatus(shown ? describe(shown) : "No papers " + describe(0).replace(/^0 papers /, "") + ".");
    $("more").hidden = papers.length < PAGE_SIZE;
    state.offset += papers.length;
    const end = sparkEndFor(papers, body.as_of);
    if (end !== state.sparkEnd) {
      // A later page brought a newer post: redraw every sparkline on the longer axis.
      state.sparkEnd = end;
      loadSparklines([...$("papers").children], generation);
    } else {
      loadSparklines(nodes, generation);
    }
    document.dispatchEvent(new CustomEvent("papers-loaded")); // live.js (re)opens its stream
  } catch (error) {
    if (generation !== state.loading) return;
    showClock(null);
    setStatus("Could not load papers: " + error.message, true);
  } finally {
    if (generation === state.loading) document.body.classList.remove("busy");
  }
}

function syncControls() {
  for (const button of document.querySelectorAll("#windows button")) {
    const active = button.dataset.window === state.window;
    button.classList.toggle("active", active);
    button.setAttribute("aria-pressed", String(active));
  }
  const relevance = $("sort").querySelector('option[value="relevance"]');
  relevance.hidden = !state.q;
  if (!state.q && state.sort === "relevance") state.sort = "posts";
  $("sort").value = state.sort;
  $("q").value = state.q;
  $("user").value = state.user;
  $("half-life").value = state.half_life;
  $("as-of").value = inputFromAsOf(state.as_of);
  if (state.category && !$("category").querySelector("option[value='" + CSS.escape(state.category) + "']")) {
    $("category").append(new Option(state.category, state.category));
  }
  $("category").value = state.category;
  document.title = state.q ? "“" + state.q + "” · Trending arXiv" : "Trending arXiv";
  syncFeedLinks();
}

function reload() {
  syncControls();
  writeUrl();
  load(false);
}

async function loadCategories() {
  try {
    const body = await getJson("api/categories");
    const select = $("category");
    for (const item of body.categories) {
      if (select.querySelector("option[value='" + CSS.escape(item.category) + "']")) continue;
      select.append(new Option(item.category + " (" + item.papers + ")", item.category));
    }
    select.value = state.category;
  } catch (_) {
    // The filter still works by clicking a paper's category.
  }
}

function wire() {
  for (const button of document.querySelectorAll("#windows button")) {
    button.addEventListener("click", () => {
      state.window = button.dataset.window;
      reload();
    });
  }
  $("sort").addEventListener("change", (event) => {
    state.sort = event.target.value;
    reload();
  });
  $("category").addEventListener("change", (event) => {
    state.category = event.target.value;
    reload();
  });
  $("search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = $("q").value.trim();
    if (text && !state.q) state.sort = "relevance";
    state.q = text;
    reload();
  });
  $("user-form").addEventListener("submit", (event) => {
    event.preventDefault();
    state.user = $("user").value.trim();
    reload();
  });
  $("half-life-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const hours = Number($("half-life").value);
    state.half_life = hours > 0 && hours <= 720 ? String(hours) : "";
    state.sort = "score";
    reload();
  });
  $("as-of-form").addEventListener("submit", (event) => {
    event.preventDefault();
    state.as_of = asOfFromInput($("as-of").value);
    reload();
  });
  $("as-of-clear").addEventListener("click", () => {
    state.as_of = "";
    reload();
  });
  $("more").addEventListener("click", () => load(true));
}

document.addEventListener("DOMContentLoaded", () => {
  readUrl();
  wire();
  syncControls();
  writeUrl();
  loadCategories();
  load(false);
});
