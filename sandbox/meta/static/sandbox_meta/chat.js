/*
 * The Messenger emulator's chat page: renders what the shop sent (text, quick replies, generic
 * carousels, button/receipt/media templates, attachments) and turns taps into calls to the
 * emulator, which posts the signed webhooks. New messages arrive by polling the JSON feed.
 * Everything the shop wrote is inserted as text (textContent), never as HTML.
 */
(function () {
  "use strict";

  var config = JSON.parse(document.getElementById("chat-config").textContent);
  var ui = config.ui;
  var $ = function (id) { return document.getElementById(id); };
  var conversation = $("conversation");
  var messages = $("messages");
  var quickReplies = $("quick-replies");
  var welcome = $("welcome");
  var getStartedBar = $("get-started-bar");
  var composerForm = $("composer-form");
  var composer = $("composer");
  var menuPanel = $("menu-panel");
  var menuItems = $("menu-items");
  var typing = $("typing");
  var toast = $("toast");
  var webviewPanel = $("webview-panel");

  var seen = {};            // item key -> element
  var items = [];           // rendered items in order: {key, at, from, message}
  var cursor = {page_after: 0, shopper_after: 0};
  var menu = {items: [], composer_input_disabled: false};
  var RATIO_HEIGHT = {compact: "50%", tall: "75%", full: "100%"};
  var numberLocale = config.locale === "ar_AR" ? "ar" : config.locale.replace("_", "-");

  // ---- small DOM helpers ---------------------------------------------------------------------

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      var value = attrs[name];
      if (value === null || value === undefined || value === false) return;
      if (name === "text") node.textContent = value;
      else if (name === "className") node.className = value;
      else if (name.indexOf("data-") === 0 || name === "dir" || name === "role" ||
               name === "href" || name === "src" || name === "alt" || name === "type" ||
               name === "title" || name === "target" || name === "rel" || name === "lang") {
        node.setAttribute(name, value);
      } else node[name] = value;
    });
    (children || []).forEach(function (child) {
      if (child) node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }

  function safeUrl(url) {
    return typeof url === "string" && /^https?:\/\//i.test(url) ? url : null;
  }

  function showToast(text) {
    toast.textContent = text;
    toast.hidden = false;
    clearTimeout(showToast.timer);
    showToast.timer = setTimeout(function () { toast.hidden = true; }, 6000);
  }

  function money(amount, currency) {
    if (typeof amount !== "number") return "";
    try {
      return new Intl.NumberFormat(numberLocale, {style: "currency", currency: currency}).format(amount);
    } catch (e) {
      return amount + " " + currency;
    }
  }

  // ---- talking to the emulator ---------------------------------------------------------------

  // Taps are sent one after another, in order: a quick second tap waits, it is never dropped.
  var queue = Promise.resolve();
  var pending = 0;

  function act(body) {
    pending++;
    document.body.classList.add("busy");
    queue = queue.then(function () { return send(body); }).finally(function () {
      if (--pending === 0) document.body.classList.remove("busy");
    });
    return queue;
  }

  function send(body) {
    return fetch(config.actUrl, {
      method: "POST",
      headers: {"Content-Type": "application/json", "X-CSRFToken": config.csrf},
      body: JSON.stringify(body),
      credentials: "same-origin"
    }).then(function (response) {
      return response.json().then(function (data) {
        if (data.item) addItem(data.item);
        if (!data.ok) showToast(data.error || ("The shop answered HTTP " + data.status));
        startConversation();
      });
    }).catch(function () {
      showToast("The emulator did not answer.");
    });
  }

  function postback(title, payload) { return act({action: "postback", title: title, payload: payload}); }

  function poll() {
    var url = config.feedUrl + "?page_after=" + cursor.page_after + "&shopper_after=" + cursor.shopper_after;
    return fetch(url, {credentials: "same-origin"}).then(function (response) {
      if (!response.ok) return;
      return response.json().then(function (data) {
        data.items.forEach(addItem);
        cursor = data.cursor;
        typing.hidden = !data.typing;
        setMenu(data.menu);
        if (data.items.length && !welcome.hidden) startConversation();
      });
    }).catch(function () { /* the server restarts: try again next tick */ });
  }

  function schedule() {
    setTimeout(function () { poll().finally(schedule); }, 1000);
  }

  // ---- the conversation ----------------------------------------------------------------------

  function startConversation() {
    welcome.hidden = true;
    getStartedBar.hidden = true;
    composerForm.hidden = false;
    applyComposer();
  }

  function addItem(item) {
    if (seen[item.key]) return;
    var node = item.from === "page" ? renderPageItem(item) : renderShopperItem(item);
    seen[item.key] = node;
    var index = items.length;
    while (index > 0 && items[index - 1].at > item.at) index--;
    if (index === items.length) messages.appendChild(node);
    else messages.insertBefore(node, seen[items[index].key]);
    items.splice(index, 0, item);
    if (item.from === "page") typing.hidden = true;
    renderQuickReplies();
    conversation.scrollTop = conversation.scrollHeight;
  }

  function renderShopperItem(item) {
    if (item.kind === "referral") {
      return el("div", {className: "system-note", "data-testid": "referral-note", text: item.text});
    }
    var failed = item.status !== null && (item.status < 200 || item.status >= 300);
    var bubble = el("div", {className: "bubble shopper", dir: "auto", text: item.text});
    var children = [bubble];
    if (failed || item.error) {
      children.push(el("div", {className: "failed", text: "Not delivered: " + (item.status ? "HTTP " + item.status : item.error)}));
    }
    return el("div", {className: "msg from-shopper", "data-testid": "message", "data-from": "shopper", "data-mid": item.mid}, children);
  }

  function renderPageItem(item) {
    var message = item.message || {};
    var body;
    if (typeof message.text === "string") {
      body = el("div", {className: "bubble page", dir: "auto", text: message.text});
    } else if (message.attachment) {
      body = renderAttachment(message.attachment);
    } else {
      body = el("div", {className: "bubble page muted", text: "(unsupported message)"});
    }
    var node = el("div", {className: "msg from-page", "data-testid": "message", "data-from": "page", "data-mid": item.mid}, [
      el("span", {className: "avatar tiny", text: (config.pageName || "?").charAt(0)}),
      el("div", {className: "msg-body"}, [body])
    ]);
    if (item.tag) node.setAttribute("data-tag", item.tag);
    return node;
  }

  function renderAttachment(attachment) {
    var payload = attachment.payload || {};
    if (attachment.type === "template") {
      var render = {generic: renderGeneric, button: renderButtonTemplate, receipt: renderReceipt, media: renderMedia}[payload.template_type];
      return render ? render(payload) : el("div", {className: "bubble page muted", text: "(" + payload.template_type + " template)"});
    }
    var url = safeUrl(payload.url);
    if (attachment.type === "image" && url) return el("img", {className: "media-image", src: url, alt: ""});
    if (attachment.type === "video" && url) return el("video", {className: "media-image", src: url, controls: true});
    if (attachment.type === "audio" && url) return el("audio", {src: url, controls: true});
    return el("a", {className: "bubble page file", href: url || "#", target: "_blank", rel: "noopener", text: "📎 " + (attachment.type || "file")});
  }

  // Buttons: postback -> webhook; web_url -> webview; phone_number -> tel: link.
  function renderButton(button) {
    var title = button.title || (button.type === "payment" ? "Buy" : "");
    var node = el("button", {type: "button", className: "tb", "data-testid": "button", "data-type": button.type, text: title});
    node.addEventListener("click", function () { buttonTapped(button, title); });
    return node;
  }

  function buttonTapped(button, title) {
    if (button.type === "postback") postback(title, button.payload);
    else if (button.type === "web_url") openWebview(button.url, button.webview_height_ratio, title);
    else if (button.type === "phone_number") showToast("Calling " + button.payload + " (the emulator does not place calls)");
    else if (button.type === "payment") showToast("The v1.2 buy button opens Messenger's own payment dialog, which the emulator does not have.");
    else showToast("The emulator does not support " + button.type + " buttons.");
  }

  function renderButtons(buttons) {
    return el("div", {className: "buttons"}, (buttons || []).map(renderButton));
  }

  function renderGeneric(payload) {
    var square = payload.image_aspect_ratio === "square";
    var cards = (payload.elements || []).map(function (element) {
      var image = safeUrl(element.image_url);
      var action = element.default_action;
      var open = action ? function () { openWebview(action.url, action.webview_height_ratio, element.title); } : null;
      var top = el("div", {className: "card-top" + (open ? " tappable" : "")}, [
        image ? el("div", {className: "card-image " + (square ? "square" : "horizontal")}, [el("img", {src: image, alt: ""})]) : null,
        el("div", {className: "card-text"}, [
          el("div", {className: "card-title", "data-testid": "card-title", dir: "auto", text: element.title}),
          element.subtitle ? el("div", {className: "card-subtitle", dir: "auto", text: element.subtitle}) : null
        ])
      ]);
      if (open) top.addEventListener("click", open);
      return el("div", {className: "tcard", "data-testid": "card"}, [top, element.buttons ? renderButtons(element.buttons) : null]);
    });
    return el("div", {className: "carousel" + (cards.length > 1 ? " many" : "")}, cards);
  }

  function renderButtonTemplate(payload) {
    return el("div", {className: "tcard button-template", "data-testid": "button-template"}, [
      el("div", {className: "card-text"}, [el("div", {className: "bt-text", dir: "auto", text: payload.text})]),
      renderButtons(payload.buttons)
    ]);
  }

  function renderMedia(payload) {
    var element = (payload.elements || [])[0] || {};
    var url = safeUrl(element.url);
    var media = element.media_type === "video"
      ? el("video", {className: "media-image", src: url, controls: true})
      : (url ? el("img", {className: "media-image", src: url, alt: ""}) : el("div", {className: "bubble page muted", text: "(media " + (element.attachment_id || "") + ")"}));
    return el("div", {className: "tcard media"}, [media, element.buttons ? renderButtons(element.buttons) : null]);
  }

  function receiptRow(label, value, strong) {
    if (value === "" || value === null || value === undefined) return null;
    return el("div", {className: "receipt-row" + (strong ? " strong" : "")}, [
      el("span", {text: label}), el("span", {dir: "auto", text: value})
    ]);
  }

  function renderReceipt(payload) {
    var currency = payload.currency;
    var summary = payload.summary || {};
    var address = payload.address;
    var lines = (payload.elements || []).map(function (element) {
      var image = safeUrl(element.image_url);
      return el("div", {className: "receipt-line"}, [
        image ? el("img", {src: image, alt: ""}) : null,
        el("div", {className: "receipt-line-text"}, [
          el("div", {className: "card-title", dir: "auto", text: element.title}),
          element.subtitle ? el("div", {className: "card-subtitle", dir: "auto", text: element.subtitle}) : null,
          el("div", {className: "card-subtitle", text: ui.qty + " " + (element.quantity === undefined ? 1 : element.quantity)})
        ]),
        el("div", {className: "receipt-price", text: money(element.price, currency)})
      ]);
    });
    var addressText = address ? [address.street_1, address.street_2, address.city, address.state, address.postal_code, address.country]
      .filter(function (part) { return part; }).join(", ") : "";
    var adjustments = (payload.adjustments || []).map(function (adj) {
      return receiptRow(adj.name, "−" + money(adj.amount, currency));
    });
    var orderUrl = safeUrl(payload.order_url);
    var node = el("div", {className: "tcard receipt", "data-testid": "receipt"}, [
      el("div", {className: "receipt-head"}, [
        el("div", {className: "receipt-title", text: ui.order_confirmation}),
        el("div", {className: "card-subtitle", dir: "auto", text: payload.recipient_name})
      ]),
      el("div", {className: "receipt-lines"}, lines),
      el("div", {className: "receipt-meta"}, [
        receiptRow(ui.order_number, payload.order_number),
        receiptRow(ui.payment_method, payload.payment_method),
        payload.timestamp ? receiptRow(ui.order_date, new Date(Number(payload.timestamp) * 1000).toLocaleDateString(numberLocale)) : null,
        receiptRow(ui.ship_to, addressText)
      ]),
      el("div", {className: "receipt-summary"}, [
        receiptRow(ui.subtotal, summary.subtotal !== undefined ? money(summary.subtotal, currency) : ""),
        receiptRow(ui.shipping, summary.shipping_cost !== undefined ? money(summary.shipping_cost, currency) : ""),
        receiptRow(ui.tax, summary.total_tax !== undefined ? money(summary.total_tax, currency) : "")
      ].concat(adjustments).concat([receiptRow(ui.total, money(summary.total_cost, currency), true)]))
    ]);
    if (orderUrl) {
      node.classList.add("tappable");
      node.querySelector(".receipt-head").addEventListener("click", function () { openWebview(orderUrl, "tall", "Order"); });
    }
    return node;
  }

  // ---- quick replies -------------------------------------------------------------------------

  function renderQuickReplies() {
    quickReplies.textContent = "";
    var last = items[items.length - 1];
    if (!last || last.from !== "page" || !last.message || !last.message.quick_replies) return;
    last.message.quick_replies.forEach(function (reply) {
      var type = reply.content_type || "text";
      var title = reply.title, payload = reply.payload;
      if (type === "user_email") { title = config.email; payload = config.email; }
      if (type === "user_phone_number") { title = config.phone; payload = config.phone; }
      if (!title && !reply.image_url) return;  // Messenger hides email/phone chips it cannot fill
      var image = safeUrl(reply.image_url);
      var chip = el("button", {type: "button", className: "qr", "data-testid": "quick-reply", "data-type": type, dir: "auto"}, [
        image ? el("img", {src: image, alt: ""}) : null, title || ""
      ]);
      chip.addEventListener("click", function () {
        act({action: "quick_reply", title: title || String(payload), payload: String(payload)});
      });
      quickReplies.appendChild(chip);
    });
  }

  // ---- persistent menu and composer ----------------------------------------------------------

  function setMenu(newMenu) {
    if (!newMenu || JSON.stringify(newMenu) === JSON.stringify(menu)) return;
    menu = newMenu;
    menuItems.textContent = "";
    if (!menu.items.length) menuItems.appendChild(el("p", {className: "muted", text: "This page has no menu."}));
    menu.items.forEach(function (item) {
      var node = el("button", {type: "button", className: "menu-item", "data-testid": "menu-item", "data-type": item.type, dir: "auto", text: item.title});
      node.addEventListener("click", function () {
        menuPanel.hidden = true;
        if (item.type === "postback") postback(item.title, item.payload).then(startConversation);
        else if (item.type === "web_url") openWebview(item.url, item.webview_height_ratio, item.title);
      });
      menuItems.appendChild(node);
    });
    applyComposer();
  }

  function applyComposer() {
    composer.hidden = !!menu.composer_input_disabled;
  }

  $("menu-toggle").addEventListener("click", function () { menuPanel.hidden = !menuPanel.hidden; });

  composerForm.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = composer.value.trim();
    if (!text) return;
    composer.value = "";
    menuPanel.hidden = true;
    act({action: "text", text: text});
  });

  $("get-started").addEventListener("click", function () { act({action: "get_started"}); });
  Array.prototype.forEach.call(document.querySelectorAll("[data-testid=ice-breaker]"), function (button) {
    button.addEventListener("click", function () {
      act({action: "ice_breaker", title: button.textContent, payload: button.getAttribute("data-payload")});
    });
  });

  // ---- webview -------------------------------------------------------------------------------

  function openWebview(url, ratio, title) {
    url = safeUrl(url);
    if (!url) { showToast("This button has no web address."); return; }
    ratio = RATIO_HEIGHT[ratio] ? ratio : "full";
    closeWebview();
    var frame = el("iframe", {"data-testid": "webview", "data-height-ratio": ratio, src: url, title: title || "webview"});
    frame.addEventListener("load", function () { watchForCloseWindow(frame); });
    $("webview-frame").appendChild(frame);
    $("webview-sheet").style.height = RATIO_HEIGHT[ratio];
    $("webview-sheet").setAttribute("data-height-ratio", ratio);
    $("webview-title").textContent = title || new URL(url).host;
    $("webview-open").href = url;
    webviewPanel.hidden = false;
  }

  // Messenger closes the webview when a page goes to its closeWindow address (the shop's
  // "Back to the chat" links do). Same-origin pages can be watched; others are left alone.
  var CLOSE_WINDOW = /^https:\/\/www\.messenger\.com\/closeWindow\b/;

  function watchForCloseWindow(frame) {
    try {
      var doc = frame.contentDocument;
      if (!doc) return;
      if (CLOSE_WINDOW.test(frame.contentWindow.location.href)) { closeWebview(); return; }
      doc.addEventListener("click", function (event) {
        var link = event.target.closest ? event.target.closest("a[href]") : null;
        if (link && CLOSE_WINDOW.test(link.href)) {
          event.preventDefault();
          closeWebview();
        }
      }, true);
    } catch (e) { /* another origin: Messenger would not let us look either */ }
  }

  function closeWebview() {
    $("webview-frame").textContent = "";
    webviewPanel.hidden = true;
  }

  $("webview-close").addEventListener("click", closeWebview);
  webviewPanel.addEventListener("click", function (event) { if (event.target === webviewPanel) closeWebview(); });
  // Messenger Extensions' requestCloseBrowser, for pages that ask to close the webview.
  window.addEventListener("message", function (event) {
    if (event.origin === window.location.origin && event.data === "close-webview") closeWebview();
  });

  if (welcome.hidden) startConversation();
  poll().finally(schedule);
})();
