// One paper's page (/papers/<id>): metadata, counts per window, the hourly timeline and
// the posts. Plain JavaScript; data goes into the DOM as text, never as markup. Relative
// URLs resolve against the app's root (the server sets <base>).
"use strict";

const WINDOWS = ["1h", "24h", "7d", "30d", "all"];
const SOURCE_NAMES = { x: "X", bluesky: "Bluesky", mastodon: "Mastodon" };
const SVG_NS = "http://www.w3.org/2000/svg";
const POSTS_LIMIT = 200;

const $ = (id) => document.getElementById(id);

function svgEl(tag, attributes, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

function paperId() {
  const marker = "/papers/";
  const path = location.pathname;
  const at = path.indexOf(marker);
  return at < 0 ? "" : decodeURIComponent(path.slice(at + marker.length)).replace(/\/+$/, "");
}

function renderMeta(paper) {
  const id = String(paper.arxiv_id);
  const title = paper.title || "arXiv:" + id + " (no metadata yet)";
  $("title").textContent = title;
  document.title = title + " · Trending arXiv";
  const abs = $("abs-link");
  abs.textContent = "arXiv:" + id;
  abs.href = safeHref(paper.abs_url) || "https://arxiv.org/abs/" + id;
  const pdf = $("pdf-link");
  const pdfHref = safeHref(paper.pdf_url);
  if (pdfHref) pdf.href = pdfHref;
  else pdf.remove();
  const categories = Array.isArray(paper.categories) ? paper.categories : [];
  for (const category of categories) $("cats").append(el("span", "cat", category));
  const published = paper.published ? new Date(paper.published) : null;
  $("published").textContent =
    published && !Number.isNaN(published.getTime())
      ? "submitted " + published.toISOString().slice(0, 10)
      : "";
  $("authors").textContent = Array.isArray(paper.authors) ? paper.authors.join(", ") : "";
  $("abstract").textContent = paper.abstract || "";
}

function renderWindows(paper) {
  const posts = paper.posts_by_window || {};
  const accounts = paper.accounts_by_window || {};
  const body = $("windows").querySelector("tbody");
  body.replaceChildren();
  for (const window of WINDOWS) {
    const row = el("tr");
    row.dataset.window = window;
    row.append(el("th", "", window === "all" ? "all time" : "last " + window));
    row.append(el("td", "posts", Number(posts[window] || 0)));
    row.append(el("td", "accounts", Number(accounts[window] || 0)));
    body.append(row);
  }
  $("as-of").textContent = paper.as_of ? "Windows end at " + formatTime(paper.as_of) + "." : "";
}

// Bars per hour with a labelled time axis (start, middle, end) and count axis (0, peak).
function renderTimeline(histogram) {
  const holder = $("timeline");
  holder.replaceChildren();
  if (!Array.isArray(histogram) || histogram.length === 0) {
    holder.append(el("p", "muted", "No mentions stored."));
    return;
  }
  const width = 760;
  const height = 180;
  const left = 36;
  const bottom = 24;
  const top = 10;
  const plotWidth = width - left - 8;
  const plotHeight = height - top - bottom;
  const counts = histogram.map((bucket) => Number(bucket.count || 0));
  const peak = Math.max(1, ...counts);
  const svg = svgEl("svg", {
    viewBox: "0 0 " + width + " " + height,
    class: "timeline-chart",
    role: "img",
    "data-hours": histogram.length,
    "data-peak": Math.max(...counts),
  });
  svg.append(svgEl("title", {}, counts.reduce((a, b) => a + b, 0) + " mentions over " +
    histogram.length + " hours, peak " + Math.max(...counts) + " in one hour"));
  const barWidth = plotWidth / histogram.length;
  histogram.forEach((bucket, i) => {
    const count = counts[i];
    if (!count) return;
    const barHeight = (count / peak) * plotHeight;
    const bar = svgEl("rect", {
      x: (left + i * barWidth).toFixed(2),
      y: (top + plotHeight - barHeight).toFixed(2),
      width: Math.max(1, barWidth - 0.5).toFixed(2),
      height: barHeight.toFixed(2),
      class: "timeline-bar",
    });
    bar.append(svgEl("title", {}, formatTime(bucket.hour) + ": " + count));
    svg.append(bar);
  });
  const baseline = top + plotHeight;
  svg.append(svgEl("line", { x1: left, x2: width - 8, y1: baseline, y2: baseline, class: "timeline-axis" }));
  svg.append(svgEl("line", { x1: left, x2: left, y1: top, y2: baseline, class: "timeline-axis" }));
  svg.append(svgEl("text", { x: left - 4, y: top + 8, "text-anchor": "end", class: "timeline-tick y-peak" }, String(peak)));
  svg.append(svgEl("text", { x: left - 4, y: baseline, "text-anchor": "end", class: "timeline-tick" }, "0"));
  const ticks = [0, Math.floor((histogram.length - 1) / 2), histogram.length - 1];
  const anchors = ["start", "middle", "end"];
  ticks.forEach((index, k) => {
    svg.append(svgEl("text", {
      x: (left + (index + 0.5) * barWidth).toFixed(1),
      y: height - 6,
      "text-anchor": anchors[k],
      class: "timeline-tick x-tick",
    }, formatTime(histogram[index].hour).replace(" UTC", "")));
  });
  holder.append(svg);
  holder.append(el("p", "muted", "Mentions per hour (UTC), up to " + Math.max(...counts) +
    " in one hour; the 7 days up to the windows' end."));
}

function renderPost(post) {
  const item = el("li", "post");
  const head = el("div", "post-head");
  const source = SOURCE_NAMES[post.source] || String(post.source || "");
  head.append(el("span", "source source-" + String(post.source || "other"), source));
  head.append(el("span", "handle", post.author_handle ? "@" + post.author_handle : "(unknown account)"));
  if (post.kind && post.kind !== "original" && post.kind !== "post") head.append(el("span", "kind", post.kind));
  const when = formatTime(post["@timestamp"]);
  const href = safeHref(post.url);
  if (href) {
    const link = el("a", "when", when || "view");
    link.href = href;
    link.rel = "noopener noreferrer";
    link.target = "_blank";
    head.append(link);
  } else {
    head.append(el("span", "when", when));
  }
  item.append(head, el("p", "post-text", post.text || ""));
  return item;
}

function renderPosts(paper) {
  const posts = Array.isArray(paper.posts) ? paper.posts : [];
  const list = $("posts");
  list.replaceChildren(...posts.map(renderPost));
  const total = Number(paper.mentions_total || 0);
  $("posts-title").textContent = total === 1 ? "The post" : "The " + total + " posts, newest first";
  if (total > posts.length) list.append(el("li", "muted", "… and " + (total - posts.length) + " more"));
}

async function main() {
  const id = paperId();
  if (!id) {
    $("status").textContent = "No paper named in the address.";
    return;
  }
  const params = new URLSearchParams({ posts_limit: String(POSTS_LIMIT) });
  const asOf = new URLSearchParams(location.search).get("as_of");
  if (asOf) params.set("as_of", asOf);
  try {
    const paper = await getJson("api/papers/" + id.split("/").map(encodeURIComponent).join("/") + "?" + params);
    renderMeta(paper);
    renderWindows(paper);
    renderTimeline(paper.histogram);
    renderPosts(paper);
    $("paper").hidden = false;
    $("status").textContent = "";
    document.body.dataset.loaded = "1";
  } catch (error) {
    $("status").textContent = "Could not load arXiv:" + id + ": " + error.message;
    $("status").classList.add("error");
    document.body.dataset.loaded = "error";
  }
}

document.addEventListener("DOMContentLoaded", main);
