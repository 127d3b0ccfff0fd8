// Live updates of the page: server-sent events from api/stream (trending_arxiv/web/live.py).
// The ranking in view is reordered in place as posts are counted: cards are moved, not
// rebuilt, their counts updated, and a card that gained posts gets a "+N new" marker
// (positioned over the card's corner, so nothing else moves). Search results and
// as-of views are fixed in time and get no stream.
"use strict";

const live = { source: null, generation: -1 };
const MARKER_SECONDS = 60;

function liveUrl() {
  const shown = $("papers").children.length;
  const params = new URLSearchParams({
    window: state.window,
    sort: state.sort === "relevance" ? "posts" : state.sort,
    limit: String(Math.min(100, Math.max(PAGE_SIZE, shown))),
  });
  if (state.category) params.set("category", state.category);
  if (state.user) params.set("user", state.user);
  return "api/stream?" + params.toString();
}

function closeLive() {
  if (live.source) live.source.close();
  live.source = null;
  $("papers").dataset.live = "off";
}

function openLive() {
  closeLive();
  // A trend score of another half-life is recomputed per request, not streamed.
  const ownHalfLife = state.half_life && state.sort === "score";
  if (state.q || state.as_of || ownHalfLife || typeof EventSource === "undefined") return;
  const generation = state.loading;
  const source = new EventSource(liveUrl());
  live.source = source;
  live.generation = generation;
  source.addEventListener("open", () => { $("papers").dataset.live = "open"; });
  source.addEventListener("ranking", (event) => {
    if (generation !== state.loading || document.body.classList.contains("busy")) return;
    let body;
    try {
      body = JSON.parse(event.data);
    } catch (_) {
      return;
    }
    applyRanking(Array.isArray(body.papers) ? body.papers : [], body.new_posts || {});
  });
}

function shownPosts(node) {
  if (node.dataset.posts !== undefined) return Number(node.dataset.posts);
  const match = /(\d+)\s*$/.exec(node.querySelector(".count").textContent || "");
  return match ? Number(match[1]) : 0;
}

function markNew(node, text, title) {
  let marker = node.querySelector(".live-new");
  if (!marker) {
    marker = el("span", "live-new");
    node.append(marker);
  }
  marker.textContent = text;
  marker.title = title || "";
  node.classList.add("live-changed");
  clearTimeout(Number(node.dataset.liveTimer || 0));
  node.dataset.liveTimer = String(setTimeout(() => {
    marker.remove();
    node.classList.remove("live-changed");
  }, MARKER_SECONDS * 1000));
}

function applyRanking(papers, newPosts) {
  const list = $("papers");
  const existing = new Map([...list.children].map((node) => [node.dataset.arxivId, node]));
  const added = [];
  const grown = [];
  const ordered = papers.map((paper) => {
    const id = String(paper.arxiv_id || "");
    let node = existing.get(id);
    const posts = Number(paper.posts || 0);
    if (!node) {
      node = renderPaper(paper);
      node.dataset.posts = String(posts);
      added.push(node);
      markNew(node, "new", "Entered this ranking just now");
      return node;
    }
    const gained = posts - shownPosts(node);
    if (gained !== 0) {
      const fresh = renderPaper(paper); // the same text the page would show after a reload
      for (const selector of [".count", ".accounts"]) {
        node.querySelector(selector).textContent = fresh.querySelector(selector).textContent;
      }
      node.querySelector("details.posts summary").textContent =
        fresh.querySelector("details.posts summary").textContent;
      node.dataset.posts = String(posts);
      if (gained > 0) {
        const latest = (newPosts[id] || [])[0];
        markNew(node, "+" + gained + " new", latest && latest.text ? latest.text : "");
        grown.push(node);
        const details = node.querySelector("details.posts");
        if (details.open && details.dataset.loaded) loadPosts(id, details.querySelector(".post-list"));
      }
    }
    return node;
  });
  // Move nodes only where the order changed: untouched cards stay where they are.
  ordered.forEach((node, index) => {
    if (list.children[index] !== node) list.insertBefore(node, list.children[index] || null);
  });
  // Papers that fell out of the streamed range leave, as a reload would show it (a list
  // longer than one stream's 100 papers keeps its tail).
  if (existing.size <= 100) {
    for (const node of [...list.children].slice(ordered.length)) node.remove();
  }
  if (added.length || grown.length) loadSparklines([...added, ...grown], state.loading);
  if (added.length || ordered.length !== existing.size) setStatus(describe(list.children.length));
}

document.addEventListener("papers-loaded", openLive);
window.addEventListener("pagehide", closeLive);
