/* The dashboard's small script: submit-on-change selects, confirmations, and the orders list's
   live updates (polls the live endpoint every few seconds; no external libraries). */
(function () {
  "use strict";

  document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
    select.addEventListener("change", function () { select.form.submit(); });
  });

  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.getAttribute("data-confirm"))) { event.preventDefault(); }
    });
  });

  // Parts that re-read themselves (a conversation's thread, the waiting list): the server
  // renders the fragment; it replaces the old one only when it changed.
  document.querySelectorAll("[data-refresh-url]").forEach(function (element) {
    var refreshUrl = element.getAttribute("data-refresh-url");
    var every = parseInt(element.getAttribute("data-refresh-interval") || "5000", 10);
    var last = element.innerHTML.trim();
    function refresh() {
      fetch(refreshUrl, { credentials: "same-origin" }).then(function (response) {
        if (!response.ok) { throw new Error(String(response.status)); }
        return response.text();
      }).then(function (html) {
        html = html.trim();
        if (html !== last) {
          var atBottom = element.scrollTop + element.clientHeight >= element.scrollHeight - 8;
          element.innerHTML = html;
          last = html;
          if (atBottom) { element.scrollTop = element.scrollHeight; }
        }
      }).catch(function () {}).finally(function () {
        window.setTimeout(refresh, every);
      });
    }
    window.setTimeout(refresh, every);
  });
  document.querySelectorAll("ol.thread").forEach(function (thread) {
    thread.scrollTop = thread.scrollHeight;  // the latest message in view
  });

  var table = document.querySelector("table[data-live-url]");
  if (!table) { return; }
  var body = table.querySelector("tbody");
  var status = document.querySelector("[data-live-status]");
  var count = document.querySelector("[data-live-count]");
  var url = table.getAttribute("data-live-url");
  var cursor = table.getAttribute("data-live-cursor");
  var insertNew = table.getAttribute("data-live-insert") === "true";
  var interval = parseInt(table.getAttribute("data-live-interval") || "3000", 10);
  var pending = 0;
  var added = 0;

  function versionOf(row) { return row.getAttribute("data-version"); }

  function fromHtml(html) {
    var holder = document.createElement("tbody");
    holder.innerHTML = html.trim();
    return holder.firstElementChild;
  }

  function apply(data) {
    (data.gone || []).forEach(function (id) {
      var row = body.querySelector('tr[data-id="' + id + '"]');
      if (row) { row.remove(); }
    });
    // Oldest change first, so the newest order ends up on top.
    (data.rows || []).slice().reverse().forEach(function (item) {
      var row = body.querySelector('tr[data-id="' + item.id + '"]');
      if (row && versionOf(row) === item.version) { return; }
      var fresh = fromHtml(item.html);
      fresh.classList.add("is-new");
      if (row) {
        row.replaceWith(fresh);
      } else if (insertNew) {
        var empty = body.querySelector("tr.empty-row");
        if (empty) { empty.remove(); }
        body.insertBefore(fresh, body.firstElementChild);
        added += 1;
      } else {
        pending += 1;
      }
    });
    if (status && pending) {
      status.textContent = status.getAttribute("data-pending-text").replace("%s", pending);
    } else if (status && added) {
      status.textContent = status.getAttribute("data-new-text").replace("%s", added);
    }
  }

  function poll() {
    var sep = url.indexOf("?") === -1 ? "?" : "&";
    fetch(url + sep + "since=" + encodeURIComponent(cursor), {
      credentials: "same-origin", headers: { "Accept": "application/json" }
    }).then(function (response) {
      if (!response.ok) { throw new Error(String(response.status)); }
      return response.json();
    }).then(function (data) {
      cursor = data.cursor;
      apply(data);
      if (count && data.count_html) { count.textContent = data.count_html; }
      if (status) { status.classList.remove("paused"); }
    }).catch(function () {
      if (status) { status.classList.add("paused"); }
    }).finally(function () {
      window.setTimeout(poll, interval);
    });
  }
  window.setTimeout(poll, interval);
})();
