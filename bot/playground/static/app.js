// device-bot playground: a small Slack client over the playground's JSON API.
// No framework, no build step. Everything from the bot is rendered with DOM nodes and
// textContent, never innerHTML: a device note reading <script> stays text.
"use strict";

(() => {
  const BOT_USER = "U0DEVICEBOT";
  const HOME = "home"; // the pseudo-channel of device-bot's App Home tab
  const $ = (id) => document.getElementById(id);
  const S = {
    state: null,
    user: null,
    channel: null,
    thread: null, // ts of the open thread
    dismissed: new Set(),
    seen: {},
    modalKey: null,
    es: null,
    renders: {},
  };

  // ------------------------------------------------------------------ DOM helpers
  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "text") node.textContent = value;
      else if (key === "className") node.className = value;
      else if (key === "dataset") Object.assign(node.dataset, value);
      else if (key === "style") node.style.cssText = value; // CSSOM, allowed by the page's CSP
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function toast(message) {
    const node = el("div", { className: "toast", role: "status", text: message });
    $("toasts").append(node);
    setTimeout(() => node.remove(), 6000);
  }

  // ------------------------------------------------------------------ mrkdwn
  const EMOJI = {
    test_tube: "🧪", white_check_mark: "✅", heavy_check_mark: "✔️", x: "❌", warning: "⚠️",
    no_entry: "⛔", no_entry_sign: "🚫", lock: "🔒", unlock: "🔓", key: "🔑", hourglass: "⌛",
    hourglass_flowing_sand: "⏳", stopwatch: "⏱️", rotating_light: "🚨", mag: "🔍", computer: "💻",
    iphone: "📱", calling: "📲", battery: "🔋", satellite: "📡", globe_with_meridians: "🌐",
    arrows_counterclockwise: "🔄", repeat: "🔁", wastebasket: "🗑️", broom: "🧹", bust_in_silhouette: "👤",
    busts_in_silhouette: "👥", label: "🏷️", pushpin: "📌", round_pushpin: "📍", memo: "📝",
    clipboard: "📋", package: "📦", inbox_tray: "📥", outbox_tray: "📤", link: "🔗", bell: "🔔",
    eyes: "👀", thumbsup: "👍", "+1": "👍", thumbsdown: "👎", "-1": "👎", tada: "🎉", red_circle: "🔴",
    large_green_circle: "🟢", large_yellow_circle: "🟡", white_circle: "⚪", black_circle: "⚫",
    large_blue_circle: "🔵", green_circle: "🟢", yellow_circle: "🟡", question: "❓",
    grey_question: "❔", exclamation: "❗", information_source: "ℹ️", sos: "🆘", camera: "📷",
    speaker: "🔈", loud_sound: "🔊", mute: "🔇", scroll: "📜", gear: "⚙️", wrench: "🔧",
    hammer_and_wrench: "🛠️", shield: "🛡️", file_folder: "📁", open_file_folder: "📂",
    card_index: "📇", date: "📅", calendar: "📆", clock1: "🕐", zzz: "💤", skull: "💀",
    lost: "🧭", compass: "🧭", house: "🏠", office: "🏢", raised_hand: "✋", ok_hand: "👌",
    heavy_minus_sign: "➖", heavy_plus_sign: "➕", arrow_right: "➡️", arrow_forward: "▶️",
    leftwards_arrow_with_hook: "↩️", fire: "🔥", sparkles: "✨", robot_face: "🤖",
  };
  const emojify = (s) => s.replace(/:([a-z0-9_+-]+):/g, (m, name) => EMOJI[name] || m);
  // Slack escapes exactly these three in mrkdwn; everything else is literal text
  const decode = (s) => s.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");
  const textNode = (s) => document.createTextNode(emojify(decode(s)));
  const SAFE_URL = /^(https?:\/\/|mailto:)/i;

  const INLINE = new RegExp(
    [
      "`([^`\\n]+)`", // 1 code
      "<([^<>\\n]+)>", // 2 link / mention
      "(?<![\\p{L}\\p{N}*])\\*(?!\\s)([^*\\n]+?)\\*(?![\\p{L}\\p{N}])", // 3 bold
      "(?<![\\p{L}\\p{N}_])_(?!\\s)([^_\\n]+?)_(?![\\p{L}\\p{N}])", // 4 italic
      "(?<![\\p{L}\\p{N}~])~(?!\\s)([^~\\n]+?)~(?![\\p{L}\\p{N}])", // 5 strike
    ].join("|"),
    "gu",
  );

  function userName(id) {
    const u = (S.state && S.state.users[id]) || null;
    return u ? u.real_name || u.name : id;
  }

  function channelName(id) {
    const c = S.state && S.state.channels.find((ch) => ch.id === id);
    return c ? c.name || id : id;
  }

  function angle(inner) {
    const bar = inner.indexOf("|");
    const target = bar >= 0 ? inner.slice(0, bar) : inner;
    const label = bar >= 0 ? inner.slice(bar + 1) : "";
    if (target.startsWith("@")) {
      const id = target.slice(1);
      return el("span", {
        className: id === S.user ? "mention me" : "mention",
        dataset: { user: id },
        text: "@" + (S.state && S.state.users[id] ? userName(id) : decode(label) || id),
      });
    }
    if (target.startsWith("#")) {
      const id = target.slice(1);
      return el("span", { className: "mention", text: "#" + (decode(label) || channelName(id)) });
    }
    if (target.startsWith("!date^")) {
      return el("span", { className: "slack-date", text: slackDate(target, decode(label)) });
    }
    if (target.startsWith("!")) {
      const what = target.slice(1);
      if (["here", "channel", "everyone"].includes(what)) return el("span", { className: "mention", text: "@" + what });
      return el("span", { className: what.startsWith("subteam") ? "mention" : "", text: decode(label) || "@" + what });
    }
    const url = decode(target);
    if (SAFE_URL.test(url)) {
      return el("a", { href: url, target: "_blank", rel: "noopener noreferrer", text: decode(label) || url });
    }
    return textNode(label || target);
  }

  // <!date^epoch^format|fallback> as Slack shows it, in the reader's time zone
  // (https://api.slack.com/reference/surfaces/formatting#date-formatting)
  function slackDate(target, fallback) {
    const [, epoch, format] = target.split("^");
    const when = new Date(Number(epoch) * 1000);
    if (!format || Number.isNaN(when.getTime())) return fallback;
    const now = new Date();
    const day = (d) => new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime();
    const days = Math.round((day(when) - day(now)) / 86400000);
    const pretty =
      days === 0 ? "Today" : days === -1 ? "Yesterday" : days === 1 ? "Tomorrow"
        : when.toLocaleDateString("en-US", { month: "short", day: "numeric", year: "numeric" });
    const seconds = Math.round((now - when) / 1000);
    const ago =
      seconds < 60 ? "just now"
        : seconds < 3600 ? `${Math.floor(seconds / 60)} minutes ago`
          : seconds < 86400 ? `${Math.floor(seconds / 3600)} hours ago`
            : `${Math.floor(seconds / 86400)} days ago`;
    const tokens = {
      date_short_pretty: pretty,
      date_long_pretty: pretty,
      date_pretty: pretty,
      date_short: when.toLocaleDateString("en-US", { month: "short", day: "numeric", year: "numeric" }),
      date: when.toLocaleDateString("en-US", { month: "long", day: "numeric", year: "numeric" }),
      time: when.toLocaleTimeString("en-GB", { hour: "2-digit", minute: "2-digit" }),
      ago,
    };
    return format.replace(/\{(\w+)\}/g, (m, name) => (name in tokens ? tokens[name] : m));
  }

  function inline(text, parent) {
    let last = 0;
    for (const m of text.matchAll(INLINE)) {
      if (m.index > last) parent.append(textNode(text.slice(last, m.index)));
      if (m[1] !== undefined) parent.append(el("code", { text: decode(m[1]) }));
      else if (m[2] !== undefined) parent.append(angle(m[2]));
      else {
        const tag = m[3] !== undefined ? "b" : m[4] !== undefined ? "i" : "s";
        const node = el(tag);
        inline(m[3] ?? m[4] ?? m[5], node);
        parent.append(node);
      }
      last = m.index + m[0].length;
    }
    if (last < text.length) parent.append(textNode(text.slice(last)));
  }

  function mrkdwn(text) {
    const root = el("span", { className: "mrkdwn" });
    const parts = String(text || "").split(/```([\s\S]*?)```/);
    parts.forEach((part, i) => {
      if (i % 2) {
        root.append(el("pre", { text: decode(part.replace(/^\n/, "")) }));
        return;
      }
      // "&gt; " at the start of a line is a quote
      const lines = part.split("\n");
      let buffer = [];
      let quote = null;
      const flush = () => {
        if (buffer.length) inline(buffer.join("\n"), root);
        buffer = [];
      };
      lines.forEach((line, n) => {
        const sep = n < lines.length - 1 ? "\n" : "";
        if (line.startsWith("&gt; ") || line === "&gt;") {
          flush();
          if (!quote) {
            quote = el("blockquote");
            root.append(quote);
          } else quote.append("\n");
          inline(line.replace(/^&gt; ?/, ""), quote);
        } else {
          quote = null;
          buffer.push(line + sep);
        }
      });
      if (buffer.length) inline(buffer.join(""), root);
    });
    return root;
  }

  function textObj(obj) {
    if (!obj) return el("span");
    if (obj.type === "mrkdwn") return mrkdwn(obj.text);
    return el("span", { className: "plain", text: emojify(String(obj.text || "")) });
  }
  const plainText = (obj) => emojify(String((obj && obj.text) || ""));

  // ------------------------------------------------------------------ confirm dialogs
  function confirmDialog(confirm) {
    return new Promise((resolve) => {
      const root = $("confirm-root");
      const done = (answer) => {
        root.replaceChildren();
        resolve(answer);
      };
      const yes = el("button", {
        type: "button",
        className: confirm.style === "danger" ? "btn danger-solid" : "btn primary",
        dataset: { confirm: "yes" },
        text: plainText(confirm.confirm) || "Yes",
        onclick: () => done(true),
      });
      const dialog = el(
        "div",
        { className: "overlay confirm-overlay", onclick: (e) => e.target === e.currentTarget && done(false) },
        el(
          "div",
          { className: "modal confirm-dialog", role: "alertdialog", "aria-modal": "true" },
          el("div", { className: "modal-header" }, el("h2", { className: "modal-title", text: plainText(confirm.title) || "Are you sure?" })),
          el("div", { className: "modal-body" }, textObj(confirm.text)),
          el(
            "div",
            { className: "modal-footer" },
            el("button", { type: "button", className: "btn", dataset: { confirm: "no" }, text: plainText(confirm.deny) || "Cancel", onclick: () => done(false) }),
            yes,
          ),
        ),
      );
      root.replaceChildren(dialog);
      yes.focus();
    });
  }

  // ------------------------------------------------------------------ talking to the server
  async function post(path, body) {
    let data = {};
    try {
      const response = await fetch(path, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ user: S.user, ...body }),
      });
      data = await response.json().catch(() => ({}));
      if (!response.ok) toast(`The playground refused that: ${data.error || response.status}`);
      else if (data.ok === false && data.error === "element_not_found") toast("That message changed meanwhile; try again.");
      else if (data.ok === false && data.error === "view_not_open") toast("That form is no longer open.");
    } catch (err) {
      toast("The playground is not answering. Is `python -m bot playground` still running?");
      data = { ok: false, error: "network" };
    }
    refresh();
    return data;
  }

  async function interact(element, ctx, value, busy) {
    if (element.confirm && !(await confirmDialog(element.confirm))) return;
    if (element.url && SAFE_URL.test(element.url)) window.open(element.url, "_blank", "noopener,noreferrer");
    const body = { action_id: element.action_id, block_id: ctx.block_id || undefined };
    if (value !== undefined) body.value = value;
    if (ctx.kind === "view") body.view_id = ctx.view_id;
    else Object.assign(body, { channel: ctx.channel, ts: ctx.ts, ephemeral: !!ctx.ephemeral });
    if (busy) busy.disabled = true;
    try {
      await post("/api/click", body);
    } finally {
      if (busy) busy.disabled = false;
    }
  }

  // ------------------------------------------------------------------ Block Kit elements
  function optionsOf(element) {
    if (element.option_groups) return element.option_groups.flatMap((g) => g.options || []);
    return element.options || [];
  }

  function selectNode(element, { multiple = false, initial = [] } = {}) {
    const select = el("select", { className: "select", multiple, dataset: { actionId: element.action_id || "" } });
    if (!multiple) {
      select.append(el("option", { value: "", text: plainText(element.placeholder) || "Select an option" }));
    }
    const add = (parent, opt) => {
      parent.append(el("option", { value: opt.value ?? "", text: plainText(opt.text), selected: initial.includes(opt.value) }));
    };
    if (element.option_groups) {
      for (const group of element.option_groups) {
        const g = el("optgroup", { label: plainText(group.label) });
        (group.options || []).forEach((o) => add(g, o));
        select.append(g);
      }
    } else (element.options || []).forEach((o) => add(select, o));
    return select;
  }

  // an external_select's options come from the bot (Slack sends it a block_suggestion)
  async function loadOptions(select, element, block, ctx) {
    try {
      const response = await fetch("/api/suggest", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({
          user: S.user,
          view_id: ctx.view_id,
          block_id: block.block_id || "",
          action_id: element.action_id || "",
          value: "",
        }),
      });
      const data = await response.json().catch(() => ({}));
      const have = new Set([...select.options].map((o) => o.value));
      for (const opt of data.options || []) {
        if (!have.has(opt.value)) select.append(el("option", { value: opt.value ?? "", text: plainText(opt.text) }));
      }
    } catch (err) {
      // the menu keeps its initial option
    }
  }

  function peopleOptions() {
    return Object.values(S.state.users).map((u) => ({ value: u.id, text: { text: u.real_name } }));
  }
  function channelOptions() {
    return S.state.channels.filter((c) => !c.is_im).map((c) => ({ value: c.id, text: { text: "#" + c.name } }));
  }

  // an interactive element in a message, a section accessory or an actions block
  function actionElement(element, ctx) {
    const c = { ...ctx };
    switch (element.type) {
      case "button": {
        const cls = element.style ? `btn ${element.style}` : "btn";
        const btn = el("button", { type: "button", className: cls, dataset: { actionId: element.action_id || "" }, text: plainText(element.text) });
        btn.addEventListener("click", () => interact(element, c, undefined, btn));
        return btn;
      }
      case "static_select":
      case "external_select":
      case "users_select":
      case "conversations_select":
      case "channels_select": {
        let shaped = element;
        if (element.type === "users_select") shaped = { ...element, options: peopleOptions() };
        if (element.type !== "users_select" && element.type !== "static_select" && element.type !== "external_select") {
          shaped = { ...element, options: channelOptions() };
        }
        const initial = element.initial_option ? [element.initial_option.value] : [element.initial_user || element.initial_conversation || element.initial_channel];
        const select = selectNode(shaped, { initial });
        select.addEventListener("change", () => select.value && interact(element, c, select.value, select));
        return select;
      }
      case "overflow": {
        const wrap = el("span", { className: "overflow" });
        const menu = el("div", { className: "overflow-menu", hidden: true });
        for (const opt of optionsOf(element)) {
          menu.append(
            el("button", {
              type: "button",
              dataset: { value: opt.value ?? "" },
              text: plainText(opt.text),
              onclick: (e) => {
                e.stopPropagation();
                menu.hidden = true;
                if (opt.url && SAFE_URL.test(opt.url)) window.open(opt.url, "_blank", "noopener,noreferrer");
                interact(element, c, opt.value);
              },
            }),
          );
        }
        const toggle = el("button", {
          type: "button",
          className: "btn overflow-toggle",
          "aria-label": "More actions",
          dataset: { actionId: element.action_id || "" },
          text: "⋯",
          onclick: (e) => {
            e.stopPropagation();
            const wasHidden = menu.hidden;
            closeMenus();
            menu.hidden = !wasHidden;
          },
        });
        wrap.append(toggle, menu);
        return wrap;
      }
      case "image":
        return imageNode(element.image_url, element.alt_text);
      case "datepicker":
      case "timepicker": {
        const input = el("input", {
          type: element.type === "datepicker" ? "date" : "time",
          className: "select",
          value: element.initial_date || element.initial_time || "",
          dataset: { actionId: element.action_id || "" },
        });
        input.addEventListener("change", () => input.value && interact(element, c, input.value, input));
        return input;
      }
      case "checkboxes":
      case "radio_buttons": {
        const node = choices(element, `${ctx.ts || ctx.view_id}-${element.action_id}`);
        node.addEventListener("change", () => interact(element, c, readChoices(node, element.type)));
        return node;
      }
      default:
        return el("span", { className: "unsupported", text: `[${element.type} not shown in the playground]` });
    }
  }

  function closeMenus() {
    document.querySelectorAll(".overflow-menu").forEach((m) => (m.hidden = true));
  }

  function imageNode(url, alt) {
    if (!url || !/^https?:\/\//i.test(url)) return el("span", { className: "unsupported", text: alt || "[image]" });
    return el("img", { src: url, alt: alt || "", loading: "lazy", referrerpolicy: "no-referrer" });
  }

  function choices(element, name) {
    const box = el("div", { className: "choices", dataset: { actionId: element.action_id || "" } });
    const type = element.type === "checkboxes" ? "checkbox" : "radio";
    const initial = new Set(
      (element.initial_options || (element.initial_option ? [element.initial_option] : [])).map((o) => o.value),
    );
    for (const opt of optionsOf(element)) {
      box.append(
        el(
          "label",
          {},
          el("input", { type, name, value: opt.value ?? "", checked: initial.has(opt.value) }),
          el("span", {}, textObj(opt.text), opt.description ? el("span", { className: "choice-desc" }, textObj(opt.description)) : null),
        ),
      );
    }
    return box;
  }

  function readChoices(box, type) {
    const checked = [...box.querySelectorAll("input:checked")].map((i) => i.value);
    return type === "checkboxes" ? checked : checked[0] ?? null;
  }

  // ------------------------------------------------------------------ Block Kit blocks
  function richText(block) {
    const root = el("div", { className: "mrkdwn rich-text" });
    const inlineEls = (elements, parent) => {
      for (const e of elements || []) {
        let node;
        if (e.type === "text") {
          node = document.createTextNode(e.text || "");
          const st = e.style || {};
          for (const [flag, tag] of [["code", "code"], ["bold", "b"], ["italic", "i"], ["strike", "s"]]) {
            if (st[flag]) node = el(tag, {}, node);
          }
        } else if (e.type === "link") node = SAFE_URL.test(e.url || "") ? el("a", { href: e.url, target: "_blank", rel: "noopener noreferrer", text: e.text || e.url }) : document.createTextNode(e.text || "");
        else if (e.type === "user") node = el("span", { className: "mention", text: "@" + userName(e.user_id) });
        else if (e.type === "channel") node = el("span", { className: "mention", text: "#" + channelName(e.channel_id) });
        else if (e.type === "emoji") node = document.createTextNode(EMOJI[e.name] || `:${e.name}:`);
        else node = document.createTextNode(e.text || "");
        parent.append(node);
      }
    };
    for (const part of block.elements || []) {
      if (part.type === "rich_text_preformatted") {
        const pre = el("pre");
        inlineEls(part.elements, pre);
        root.append(pre);
      } else if (part.type === "rich_text_quote") {
        const q = el("blockquote");
        inlineEls(part.elements, q);
        root.append(q);
      } else if (part.type === "rich_text_list") {
        const list = el(part.style === "ordered" ? "ol" : "ul");
        for (const item of part.elements || []) {
          const li = el("li");
          inlineEls(item.elements, li);
          list.append(li);
        }
        root.append(list);
      } else {
        const span = el("div");
        inlineEls(part.elements, span);
        root.append(span);
      }
    }
    return root;
  }

  function renderBlocks(blocks, ctx) {
    const root = el("div", { className: "blocks" });
    for (const block of blocks || []) {
      const c = { ...ctx, block_id: block.block_id };
      const data = { blockId: block.block_id || "", blockType: block.type };
      switch (block.type) {
        case "header":
          root.append(el("div", { className: "block-header", dataset: data, text: plainText(block.text) }));
          break;
        case "section": {
          const main = el("div", { className: "section-main" });
          if (block.text) main.append(textObj(block.text));
          if (block.fields && block.fields.length) {
            main.append(el("div", { className: "fields" }, block.fields.map((f) => el("div", { className: "field" }, textObj(f)))));
          }
          const node = el("div", { className: "block-section", dataset: data }, main);
          if (block.accessory) node.append(el("div", { className: "accessory" }, actionElement(block.accessory, c)));
          root.append(node);
          break;
        }
        case "context":
          root.append(
            el(
              "div",
              { className: "block-context", dataset: data },
              (block.elements || []).map((e) => (e.type === "image" ? imageNode(e.image_url, e.alt_text) : textObj(e))),
            ),
          );
          break;
        case "divider":
          root.append(el("hr", { className: "block-divider", dataset: data }));
          break;
        case "actions":
          root.append(el("div", { className: "block-actions", dataset: data }, (block.elements || []).map((e) => actionElement(e, c))));
          break;
        case "image":
          root.append(
            el(
              "figure",
              { className: "block-image", dataset: data },
              block.title ? el("div", { className: "image-title", text: plainText(block.title) }) : null,
              imageNode(block.image_url, block.alt_text),
            ),
          );
          break;
        case "input":
          root.append(inputBlock(block, ctx));
          break;
        case "rich_text":
          root.append(richText(block));
          break;
        case "markdown":
          root.append(mrkdwn(block.text || ""));
          break;
        default:
          root.append(el("div", { className: "unsupported", text: `[${block.type} block not shown in the playground]` }));
      }
    }
    return root;
  }

  // an input block of a modal: label, element, hint, error
  function inputBlock(block, ctx) {
    const element = block.element || {};
    const id = `in-${ctx.view_id}-${block.block_id || ""}-${element.action_id || ""}`;
    const wrap = el("div", {
      className: "input-block",
      dataset: { blockId: block.block_id || "", actionId: element.action_id || "", elementType: element.type || "", optional: block.optional ? "1" : "" },
    });
    wrap.append(
      el("label", { className: "input-label", for: id }, plainText(block.label), block.optional ? el("span", { className: "optional", text: " (optional)" }) : null),
    );
    let field;
    const placeholder = element.placeholder ? plainText(element.placeholder) : undefined;
    switch (element.type) {
      case "plain_text_input":
        field = element.multiline
          ? el("textarea", { id, placeholder, maxlength: element.max_length })
          : el("input", { id, type: "text", placeholder, maxlength: element.max_length });
        field.value = element.initial_value || "";
        break;
      case "email_text_input":
      case "url_text_input":
        field = el("input", { id, type: element.type === "email_text_input" ? "email" : "url", placeholder });
        field.value = element.initial_value || "";
        break;
      case "number_input":
        field = el("input", {
          id,
          type: "number",
          placeholder,
          step: element.is_decimal_allowed ? "any" : "1",
          min: element.min_value,
          max: element.max_value,
        });
        field.value = element.initial_value || "";
        break;
      case "static_select":
      case "external_select":
        field = selectNode(element, { initial: element.initial_option ? [element.initial_option.value] : [] });
        field.id = id;
        if (element.type === "external_select") loadOptions(field, element, block, ctx);
        break;
      case "multi_static_select":
      case "multi_external_select":
        field = selectNode(element, { multiple: true, initial: (element.initial_options || []).map((o) => o.value) });
        field.id = id;
        break;
      case "users_select":
      case "multi_users_select":
        field = selectNode({ ...element, options: peopleOptions() }, {
          multiple: element.type.startsWith("multi"),
          initial: [element.initial_user, ...(element.initial_users || [])],
        });
        field.id = id;
        break;
      case "conversations_select":
      case "channels_select":
      case "multi_conversations_select":
      case "multi_channels_select":
        field = selectNode({ ...element, options: channelOptions() }, {
          multiple: element.type.startsWith("multi"),
          initial: [element.initial_conversation || element.initial_channel, ...(element.initial_conversations || element.initial_channels || [])],
        });
        field.id = id;
        break;
      case "checkboxes":
      case "radio_buttons":
        field = choices(element, id);
        break;
      case "datepicker":
        field = el("input", { id, type: "date", value: element.initial_date || "" });
        break;
      case "timepicker":
        field = el("input", { id, type: "time", value: element.initial_time || "" });
        break;
      case "file_input":
        // the picked file is read here and sent with the form; the playground stores it as
        // Slack does a person's upload, and the state carries the file object
        field = el("input", { id, type: "file", accept: (element.filetypes || []).map((t) => `.${t}`).join(",") });
        field.addEventListener("change", () => {
          const file = field.files && field.files[0];
          field.fileData = null;
          if (!file) return;
          const reader = new FileReader();
          reader.onload = () => {
            field.fileData = { name: file.name, text: String(reader.result || "") };
          };
          reader.readAsText(file);
        });
        break;
      default:
        field = el("div", { className: "unsupported", text: `[${element.type} input not supported by the playground]` });
    }
    field.classList.add("input-element");
    wrap.append(field);
    if (block.dispatch_action) {
      field.addEventListener("change", () => {
        const value = readInput(wrap);
        if (value !== null && value !== "") interact(element, { ...ctx, block_id: block.block_id }, value);
      });
    }
    if (block.hint) wrap.append(el("div", { className: "hint", text: plainText(block.hint) }));
    wrap.append(el("div", { className: "field-error", hidden: true }));
    return wrap;
  }

  function readInput(wrap) {
    const type = wrap.dataset.elementType;
    const field = wrap.querySelector(".input-element");
    if (!field) return null;
    if (type === "checkboxes" || type === "radio_buttons") return readChoices(field, type);
    if (type === "file_input") return field.fileData ? [{ upload: field.fileData }] : [];
    if (field.tagName === "SELECT" && field.multiple) return [...field.selectedOptions].map((o) => o.value);
    if (field.tagName === "SELECT") return field.value || null;
    return field.value;
  }

  function isEmpty(value) {
    return value === null || value === "" || (Array.isArray(value) && value.length === 0);
  }

  // ------------------------------------------------------------------ modals
  function renderModal(views) {
    const root = $("modal-root");
    const top = views.length ? views[views.length - 1] : null;
    const key = top ? `${top.id}:${top.hash}:${views.length}` : null;
    if (key !== S.modalKey) {
      S.modalKey = key;
      if (!top) {
        root.replaceChildren();
        return;
      }
      const ctx = { kind: "view", view_id: top.id };
      const form = el("form", { className: "modal", role: "dialog", "aria-modal": "true", dataset: { viewId: top.id, callbackId: top.callback_id || "" } });
      const header = el("div", { className: "modal-header" });
      if (views.length > 1) {
        header.append(el("button", { type: "button", className: "modal-back", "aria-label": "Back", text: "‹", onclick: () => post("/api/close", { view_id: top.id }) }));
      }
      header.append(
        el("h2", { className: "modal-title", text: plainText(top.title) }),
        el("button", { type: "button", className: "modal-x", "aria-label": "Close", text: "×", onclick: () => post("/api/close", { all: true }) }),
      );
      const footer = el("div", { className: "modal-footer" });
      footer.append(
        el("button", {
          type: "button",
          className: "btn modal-close",
          text: plainText(top.close) || (top.submit ? "Cancel" : "Close"),
          onclick: () => post("/api/close", { view_id: top.id }),
        }),
      );
      if (top.submit) {
        footer.append(el("button", { type: "submit", className: "btn primary modal-submit", text: plainText(top.submit), disabled: !!top.submit_disabled }));
      }
      form.append(header, el("div", { className: "modal-body" }, renderBlocks(top.blocks, ctx)), footer);
      form.addEventListener("submit", (e) => {
        e.preventDefault();
        submitModal(form, top);
      });
      root.replaceChildren(el("div", { className: "overlay modal-overlay" }, form));
      const first = form.querySelector(".input-element");
      if (first && first.focus) first.focus();
    }
    if (top) showErrors(top.errors || {});
  }

  function showErrors(errors) {
    document.querySelectorAll("#modal-root .input-block").forEach((wrap) => {
      const message = errors[wrap.dataset.blockId];
      const node = wrap.querySelector(".field-error");
      wrap.classList.toggle("has-error", !!message);
      node.hidden = !message;
      node.textContent = message || "";
    });
  }

  async function submitModal(form, view) {
    const values = {};
    const local = {};
    form.querySelectorAll(".input-block").forEach((wrap) => {
      const value = readInput(wrap);
      const blockId = wrap.dataset.blockId;
      const field = wrap.querySelector(".input-element");
      // Slack checks these in the client before anything reaches the app
      if (!wrap.dataset.optional && isEmpty(value)) local[blockId] = "Please complete this required field.";
      else if (field && field.validity && !field.validity.valid) local[blockId] = field.validationMessage || "Please enter a valid value.";
      (values[blockId] ||= {})[wrap.dataset.actionId] = value;
    });
    if (Object.keys(local).length) {
      showErrors(local);
      return;
    }
    showErrors({}); // the app answers afresh for every submission
    const button = form.querySelector(".modal-submit");
    if (button) button.disabled = true;
    try {
      const result = await post("/api/submit", { view_id: view.id, values });
      if (result && result.errors && S.modalKey && S.modalKey.startsWith(view.id + ":")) showErrors(result.errors);
    } finally {
      if (button) button.disabled = !!view.submit_disabled;
    }
  }

  // ------------------------------------------------------------------ messages
  const PALETTE = ["#4a154b", "#1264a3", "#2bac76", "#e01e5a", "#ecb22e", "#36c5f0", "#7c3085", "#0b4c8c"];
  function avatar(user) {
    if (user === BOT_USER) return el("div", { className: "avatar", style: "background:#2eb67d", text: "🤖" });
    if (user === "USLACKBOT") return el("div", { className: "avatar", style: "background:#8b8b8b", text: "S" });
    let h = 0;
    for (const ch of user) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
    const initials = userName(user).split(/\s+/).map((w) => w[0] || "").join("").slice(0, 2).toUpperCase();
    return el("div", { className: "avatar", style: `background:${PALETTE[h % PALETTE.length]}`, text: initials || "?" });
  }

  function clock(ts) {
    const d = new Date(parseFloat(ts) * 1000);
    return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  function renderMessage(m, opts) {
    const isBot = m.user === BOT_USER || !!m.bot_id;
    const author = isBot ? "device-bot" : m.user === "USLACKBOT" ? "Slackbot" : userName(m.user);
    const ctx = { kind: "message", channel: m.channel || S.channel, ts: m.ts, ephemeral: !!m.is_ephemeral };
    const body = el("div", { className: "msg-body" });
    const meta = el(
      "div",
      { className: "msg-meta" },
      el("span", { className: "msg-author", text: author }),
      isBot ? el("span", { className: "app-badge", text: "APP" }) : null,
      el("span", { className: "msg-time", title: m.ts, text: clock(m.ts) }),
      m.edited ? el("span", { className: "edited", text: "(edited)" }) : null,
    );
    body.append(meta);
    if (m.is_ephemeral) {
      body.append(
        el(
          "div",
          { className: "only-you" },
          "Only visible to you",
          el("button", { type: "button", className: "dismiss", text: "Dismiss", onclick: () => { S.dismissed.add(m.ts); render(); } }),
        ),
      );
    }
    if (m.command) body.append(el("div", { className: "command-echo", text: m.text }));
    else if (m.blocks && m.blocks.length) body.append(renderBlocks(m.blocks, ctx));
    else body.append(mrkdwn(m.text || ""));
    for (const att of m.attachments || []) {
      const a = el("div", { className: "attachment", style: `border-left:4px solid ${/^#?[0-9a-f]{3,6}$/i.test(att.color || "") ? (att.color.startsWith("#") ? att.color : "#" + att.color) : "#ddd"};padding-left:8px` });
      if (att.blocks) a.append(renderBlocks(att.blocks, ctx));
      else a.append(mrkdwn(att.text || att.fallback || ""));
      body.append(a);
    }
    for (const f of m.files || []) {
      // a file shared by files.completeUploadExternal: a download link served by the emulator;
      // an image is shown too, as Slack does, from the page's own origin (/files/<id>/<name>)
      if (/^image\/(png|jpeg|gif)$/.test(f.mimetype || "") && /^F[A-Z0-9]+$/.test(f.id || "")) {
        body.append(el("img", { className: "file-image", src: `/files/${f.id}/${encodeURIComponent(f.name || "image")}`, alt: f.title || f.name || "image" }));
      }
      body.append(el("a", { className: "file", href: f.url_private, download: f.name, text: `📄 ${f.title || f.name} (${f.size} bytes)` }));
    }
    if (opts.replies) {
      body.append(el("button", { type: "button", className: "thread-link", text: `${opts.replies} ${opts.replies === 1 ? "reply" : "replies"}`, onclick: () => openThread(m.ts) }));
    }
    const node = el(
      "div",
      {
        className: `msg${m.is_ephemeral ? " ephemeral" : ""}${opts.parent ? " thread-parent" : ""}`,
        dataset: { ts: m.ts, user: m.user || "", ephemeral: m.is_ephemeral ? "1" : "" },
      },
      avatar(m.user || ""),
      body,
    );
    if (opts.canReply) node.append(el("button", { type: "button", className: "reply-in-thread", text: "Reply in thread", onclick: () => openThread(m.ts) }));
    return node;
  }

  function channelView(channel) {
    const st = S.state;
    const all = st.messages[channel] || [];
    const top = [];
    const replies = {};
    for (const m of all) {
      if (m.thread_ts && m.thread_ts !== m.ts) (replies[m.thread_ts] ||= []).push(m);
      else top.push(m);
    }
    const eph = st.ephemerals.filter((e) => e.channel === channel && !S.dismissed.has(e.ts));
    for (const e of eph) {
      if (e.thread_ts && e.thread_ts !== e.ts) (replies[e.thread_ts] ||= []).push(e);
      else top.push(e);
    }
    const byTs = (a, b) => parseFloat(a.ts) - parseFloat(b.ts);
    top.sort(byTs);
    Object.values(replies).forEach((r) => r.sort(byTs));
    return { top, replies, all };
  }

  // Re-render a list, reusing the node of every message whose data did not change, so a click
  // or an open select is not lost when something else arrives.
  function renderList(container, items) {
    const cache = S.renders[container.id] || new Map();
    const next = new Map();
    const nodes = items.map(([key, build]) => {
      const node = cache.get(key) || build();
      next.set(key, node);
      return node;
    });
    const same = nodes.length === container.children.length && nodes.every((n, i) => container.children[i] === n);
    S.renders[container.id] = next;
    if (same) return;
    const nearBottom = container.scrollHeight - container.scrollTop - container.clientHeight < 60;
    const scroll = container.scrollTop;
    container.replaceChildren(...nodes);
    container.scrollTop = nearBottom ? container.scrollHeight : scroll;
  }

  // The Home tab as the bot published it, and a workflow that runs the bot's custom step
  function homePane(st) {
    const pane = el("div", { className: "home-pane" });
    const home = st.home;
    pane.append(
      home
        ? el("div", { className: "home-view", dataset: { viewId: home.id } }, renderBlocks(home.blocks, { kind: "view", view_id: home.id }))
        : el("div", { className: "empty", text: "Opening the Home tab…" }),
    );
    const field = (name, label, placeholder) =>
      el("label", { className: "step-field" }, el("span", { text: label }), el("input", { name, placeholder, required: name !== "reason" }));
    const form = el(
      "form",
      { className: "step-form", autocomplete: "off" },
      el("div", { className: "block-header", text: "Workflow: Request a device action" }),
      el("div", { className: "block-context", text: "Runs the bot's Workflow Builder step as you (function_executed); it ends when the request does." }),
      field("device", "Device", "serial, device id or asset id"),
      field("action", "Action", "disable, lock, reboot…"),
      field("reason", "Reason", "e.g. leaver, ticket 7"),
      el("button", { type: "submit", className: "btn primary", text: "Run step" }),
    );
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const data = Object.fromEntries(new FormData(form).entries());
      const result = await post("/api/step", data);
      if (result.ok) form.reset();
    });
    pane.append(form);
    if (st.steps.length) {
      pane.append(
        el(
          "ul",
          { className: "step-list" },
          st.steps
            .slice()
            .reverse()
            .map((s) => {
              const outcome = s.state === "completed" ? `${s.outputs.final_state}: ${s.outputs.outcome}` : s.state === "failed" ? s.error : "waiting for the request to end";
              return el("li", { className: `step ${s.state}`, dataset: { executionId: s.id } }, el("strong", { text: `${s.inputs.action} ${s.inputs.device}` }), ` — ${s.state}: `, el("span", { text: outcome }));
            }),
        ),
      );
    }
    return pane;
  }

  function render() {
    const st = S.state;
    if (!st) return;
    document.body.dataset.user = S.user;
    document.body.dataset.channel = S.channel;
    document.body.dataset.version = st.version;

    // who am I
    const switcher = $("user-switch");
    const peopleKey = JSON.stringify(st.people);
    if (switcher.dataset.key !== peopleKey) {
      switcher.dataset.key = peopleKey;
      switcher.replaceChildren(...st.people.map((p) => el("option", { value: p.id, text: `${p.name} — ${p.role}` })));
    }
    switcher.value = S.user;
    const me = st.people.find((p) => p.id === S.user);
    $("user-role").textContent = me ? `${me.role} · ${me.id}` : "";

    // sidebar
    const makeItem = (c, label) => {
      const { top } = channelView(c.id);
      const unread = c.id !== S.channel && top.length > (S.seen[c.id] ?? top.length);
      return el(
        "li",
        {},
        el("button", {
          type: "button",
          className: `${c.id === S.channel ? "active" : ""}${unread ? " unread" : ""}`,
          dataset: { channel: c.id },
          text: label,
          onclick: () => selectChannel(c.id),
        }),
      );
    };
    const channels = st.channels.filter((c) => !c.is_im);
    const dms = st.channels.filter((c) => c.is_im);
    $("channel-list").replaceChildren(...channels.map((c) => makeItem(c, `# ${c.name}`)));
    $("app-list").replaceChildren(
      el("li", {}, el("button", { type: "button", className: S.channel === HOME ? "active" : "", dataset: { channel: HOME }, text: "device-bot · Home", onclick: () => selectChannel(HOME) })),
    );
    $("dm-list").replaceChildren(...(dms.length ? dms.map((c) => makeItem(c, "device-bot")) : [el("li", { className: "empty-dm" }, el("button", { type: "button", disabled: true, text: "none yet" }))]));

    // problems the emulator saw (what real Slack would have refused)
    $("problems").hidden = !st.problems.length;
    $("problems-summary").textContent = `${st.problems.length} Slack API problem${st.problems.length === 1 ? "" : "s"} (for bot developers)`;
    $("problems-list").replaceChildren(...st.problems.map((p) => el("li", { text: p })));

    // the App Home tab, or a channel
    const onHome = S.channel === HOME;
    $("composer").hidden = onHome;
    $("hints").hidden = onHome;
    if (onHome) {
      $("channel-title").textContent = "device-bot";
      $("channel-purpose").textContent = "Home — published by the bot (views.publish)";
      $("thread-pane").hidden = true;
      // the tab keeps its scroll position when the bot republishes it (a message list sticks to the bottom)
      const list = $("messages");
      const key = JSON.stringify([S.user, st.home, st.steps, st.users]);
      if (list.dataset.homeKey !== key) {
        const top = list.dataset.homeKey ? list.scrollTop : 0;
        list.replaceChildren(homePane(st));
        list.scrollTop = top;
        list.dataset.homeKey = key;
      }
      S.renders.messages = null;
      renderModal(st.views);
      return;
    }
    delete $("messages").dataset.homeKey;
    const channel = st.channels.find((c) => c.id === S.channel);
    $("channel-title").textContent = channel ? (channel.is_im ? "device-bot" : `# ${channel.name}`) : "";
    $("channel-purpose").textContent = channel ? (channel.is_im ? "Direct messages from device-bot" : channel.purpose) : "";
    $("composer-input").placeholder = channel ? `Message ${channel.is_im ? "device-bot" : "#" + channel.name} — try /device help` : "";
    const view = channelView(S.channel);
    S.seen[S.channel] = view.top.length;
    const usersKey = JSON.stringify([S.user, st.users]);
    const items = view.top.map((m) => {
      const replies = (view.replies[m.ts] || []).length;
      return [JSON.stringify([m, replies, usersKey]), () => renderMessage(m, { replies, canReply: !m.is_ephemeral })];
    });
    if (!items.length) items.push(["empty", () => el("div", { className: "empty", text: "No messages yet. Type /device help below." })]);
    renderList($("messages"), items);

    // the thread
    const pane = $("thread-pane");
    const parent = S.thread && view.all.find((m) => m.ts === S.thread);
    pane.hidden = !parent;
    if (parent) {
      $("thread-channel").textContent = channel && !channel.is_im ? `# ${channel.name}` : "";
      const replies = view.replies[S.thread] || [];
      const usersKey2 = JSON.stringify([S.user, st.users]);
      renderList($("thread-messages"), [
        [JSON.stringify(["parent", parent, usersKey2]), () => renderMessage(parent, { parent: true })],
        ...replies.map((m) => [JSON.stringify([m, usersKey2]), () => renderMessage(m, {})]),
      ]);
    } else S.renders["thread-messages"] = null;

    // hints
    const hintKey = JSON.stringify(st.hints);
    if ($("hints").dataset.key !== hintKey) {
      $("hints").dataset.key = hintKey;
      $("hints").replaceChildren(
        st.hints.length ? el("span", { text: "Try:" }) : "",
        ...st.hints.map((h) =>
          el("button", {
            type: "button",
            text: h,
            onclick: () => {
              $("composer-input").value = h;
              $("composer-input").focus();
            },
          }),
        ),
      );
    }

    renderModal(st.views);
  }

  // "emulator.local" version numbers: a state fetched earlier may arrive later than the
  // event stream's newer one, and must not overwrite it
  function notOlder(version, than) {
    const [a1, a2] = String(version).split(".").map(Number);
    const [b1, b2] = String(than).split(".").map(Number);
    return a1 > b1 || (a1 === b1 && a2 >= b2);
  }

  function applyState(state) {
    if (!state || state.me !== S.user) return; // a late answer for the previous user
    if (S.state && S.state.me === state.me && !notOlder(state.version, S.state.version)) return;
    const first = !S.state;
    S.state = state;
    const known = S.channel === HOME || state.channels.some((c) => c.id === S.channel);
    if (first || !known) {
      if (!known) S.channel = state.default_channel;
      for (const c of state.channels) S.seen[c.id] = channelView(c.id).top.length;
    }
    render();
  }

  async function refresh() {
    try {
      const response = await fetch(`/api/state?user=${encodeURIComponent(S.user)}`, { cache: "no-store" });
      if (response.ok) applyState(await response.json());
    } catch (err) {
      /* the event stream reports the connection */
    }
  }

  function connect() {
    if (S.es) S.es.close();
    const status = $("connection");
    if (!window.EventSource) {
      status.textContent = "polling";
      clearInterval(S.poller);
      S.poller = setInterval(refresh, 2000);
      return;
    }
    const es = new EventSource(`/api/events?user=${encodeURIComponent(S.user)}`);
    es.addEventListener("state", (e) => applyState(JSON.parse(e.data)));
    es.onopen = () => {
      status.className = "live";
      status.textContent = "live";
    };
    es.onerror = () => {
      status.className = "down";
      status.textContent = "reconnecting…";
    };
    S.es = es;
  }

  // ------------------------------------------------------------------ navigation
  function remember() {
    const url = new URL(window.location.href);
    url.searchParams.set("user", S.user);
    url.searchParams.set("channel", S.channel);
    history.replaceState(null, "", url);
    try {
      localStorage.setItem("playground.user", S.user);
      localStorage.setItem("playground.channel", S.channel);
    } catch (err) {
      /* private mode */
    }
  }

  function selectChannel(id) {
    S.channel = id;
    S.thread = null;
    remember();
    render();
    if (id === HOME) post("/api/home", {}); // Slack sends app_home_opened; the bot publishes
    else $("composer-input").focus();
  }

  function openThread(ts) {
    S.thread = ts;
    S.renders["thread-messages"] = null;
    render();
    $("thread-input").focus();
  }

  function switchUser(id) {
    if (id === S.user) return;
    S.user = id;
    S.state = null;
    S.modalKey = null;
    S.renders = {};
    S.dismissed = new Set();
    $("modal-root").replaceChildren();
    remember();
    connect();
    refresh();
    if (S.channel === HOME) post("/api/home", {});
  }

  async function send(input, threadTs) {
    const text = input.value.trim();
    if (!text) return;
    input.disabled = true;
    const result = await post("/api/message", { channel: S.channel, text, thread_ts: threadTs || undefined });
    input.disabled = false;
    if (result.ok !== false || result.error === "unknown_command" || (result.status && result.status !== 200)) input.value = "";
    input.focus();
  }

  function composer(form, input, threadTs) {
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      send(input, threadTs());
    });
    input.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        send(input, threadTs());
      }
    });
  }

  function start() {
    const params = new URLSearchParams(window.location.search);
    let stored = {};
    try {
      stored = { user: localStorage.getItem("playground.user"), channel: localStorage.getItem("playground.channel") };
    } catch (err) {
      /* private mode */
    }
    S.user = params.get("user") || stored.user || "U0OPERATOR";
    S.channel = params.get("channel") || stored.channel || "C0HELPDESK";
    $("user-switch").addEventListener("change", (e) => switchUser(e.target.value));
    $("thread-close").addEventListener("click", () => {
      S.thread = null;
      render();
    });
    composer($("composer"), $("composer-input"), () => null);
    composer($("thread-composer"), $("thread-input"), () => S.thread);
    document.addEventListener("click", closeMenus);
    document.addEventListener("keydown", (e) => {
      if (e.key !== "Escape") return;
      if ($("confirm-root").firstChild) return; // the dialog handles its own keys
      if (S.state && S.state.views.length) post("/api/close", { view_id: S.state.views[S.state.views.length - 1].id });
    });
    fetch(`/api/state?user=${encodeURIComponent(S.user)}`)
      .then((r) => {
        if (!r.ok) {
          S.user = "U0OPERATOR"; // a remembered user this playground does not have
          return fetch(`/api/state?user=${S.user}`);
        }
        return r;
      })
      .then((r) => r.json())
      .then((state) => {
        applyState(state);
        remember();
        connect();
        if (S.channel === HOME) post("/api/home", {});
      })
      .catch(() => toast("Could not load the playground state."));
  }

  document.addEventListener("DOMContentLoaded", start);
})();
