/*
 * kollega web chat widget: one <script src="https://kollega.example.org/webchat/widget.js" defer>
 * on any intranet page opens a chat button in the corner; on kollega's own page (data-inline)
 * the chat fills the page. No framework and no build step, so it stays small and reviewable.
 *
 * Safety: everything the bot or the user wrote reaches the page through textContent and
 * createElement only — never innerHTML — and links only with http(s), mailto or tel.
 *
 * Options (attributes on the script tag):
 *   data-token-provider  name of a global async function returning an Entra ID access token
 *                        for kollega (sign-in); without it, or if it fails, the chat is anonymous
 *   data-lang            UI language (nb, sv, da, fi, en); default: the page's lang
 *   data-inline          id of an element to render the chat in, instead of the corner button
 *   data-api             base URL of kollega; default: where this script came from
 */
(function () {
  'use strict';

  var script = document.currentScript;
  if (!script || window.kollegaWebChat) return;

  var STRINGS = {
    nb: { open: 'Åpne chat', close: 'Lukk', send: 'Send', message: 'Melding', typing: 'kollega skriver…',
      you: 'Du', title: 'Spør kollega', suggestions: 'Forslag', newTab: '(åpnes i ny fane)', log: 'Samtale',
      error: 'Noe gikk galt. Prøv igjen om litt.',
      busy: 'Du sender veldig mange meldinger. Vent litt og prøv igjen.' },
    sv: { open: 'Öppna chatten', close: 'Stäng', send: 'Skicka', message: 'Meddelande', typing: 'kollega skriver…',
      you: 'Du', title: 'Fråga kollega', suggestions: 'Förslag', newTab: '(öppnas i ny flik)', log: 'Konversation',
      error: 'Något gick fel. Försök igen om en stund.',
      busy: 'Du skickar väldigt många meddelanden. Vänta en stund och försök igen.' },
    da: { open: 'Åbn chat', close: 'Luk', send: 'Send', message: 'Besked', typing: 'kollega skriver…',
      you: 'Du', title: 'Spørg kollega', suggestions: 'Forslag', newTab: '(åbner i ny fane)', log: 'Samtale',
      error: 'Noget gik galt. Prøv igen om lidt.',
      busy: 'Du sender rigtig mange beskeder. Vent lidt, og prøv igen.' },
    fi: { open: 'Avaa chat', close: 'Sulje', send: 'Lähetä', message: 'Viesti', typing: 'kollega kirjoittaa…',
      you: 'Sinä', title: 'Kysy kollegalta', suggestions: 'Ehdotukset', newTab: '(avautuu uuteen välilehteen)',
      log: 'Keskustelu', error: 'Jokin meni vikaan. Yritä hetken päästä uudelleen.',
      busy: 'Lähetät todella paljon viestejä. Odota hetki ja yritä uudelleen.' },
    en: { open: 'Open chat', close: 'Close', send: 'Send', message: 'Message', typing: 'kollega is typing…',
      you: 'You', title: 'Ask kollega', suggestions: 'Suggestions', newTab: '(opens in a new tab)',
      log: 'Conversation', error: 'Something went wrong. Please try again in a moment.',
      busy: 'You are sending a lot of messages. Please wait a moment and try again.' }
  };
  var ALIASES = { no: 'nb', nn: 'nb', nob: 'nb', nno: 'nb', swe: 'sv', dan: 'da', fin: 'fi', eng: 'en' };
  var LOCALE = /^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8}){0,3}$/;
  var SAFE_URL = /^(https?:|mailto:|tel:)/i;
  var MAX_TRANSCRIPT = 60;

  var srcUrl = new URL(script.src, location.href);
  var base = new URL(script.getAttribute('data-api') || srcUrl.origin, location.href);
  var api = base.origin + base.pathname.replace(/\/$/, '') + '/api/webchat';
  var staticDir = srcUrl.href.replace(/[^/]*([?#].*)?$/, '');
  var storeKey = 'kollega.webchat.v1:' + api;
  var inlineId = script.getAttribute('data-inline');
  var providerName = script.getAttribute('data-token-provider');
  var pageTag = document.documentElement.lang || navigator.language || '';
  var pageLocale = LOCALE.test(pageTag) ? pageTag : '';

  function uiLanguage(tag) {
    var primary = String(tag || '').toLowerCase().split(/[-_]/)[0];
    primary = ALIASES[primary] || primary;
    return STRINGS[primary] ? primary : '';
  }

  var lang = uiLanguage(script.getAttribute('data-lang')) || uiLanguage(pageTag) ||
    uiLanguage(navigator.language) || 'en';
  function t(key) { return STRINGS[lang][key]; }

  // -- DOM helpers: attributes by setAttribute, text by textContent, nothing else -----------

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    if (attrs) {
      for (var name in attrs) {
        if (Object.prototype.hasOwnProperty.call(attrs, name) && attrs[name] !== null) {
          node.setAttribute(name, attrs[name]);
        }
      }
    }
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function safeUrl(raw) {
    var value = String(raw || '').trim();
    if (!SAFE_URL.test(value)) return null;
    try { return new URL(value).href; } catch (e) { return null; }
  }

  function link(href, parent) {
    var a = el('a', { href: href, target: '_blank', rel: 'noopener noreferrer' });
    parent.appendChild(a);
    return a;
  }

  function newTabNote(a) {
    a.appendChild(el('span', { 'class': 'kollega-sr' }, ' ' + t('newTab')));
  }

  // -- a small Markdown subset, rendered as DOM nodes ----------------------------------------
  // Bold, italics, inline code, links, bare URLs, bullet and numbered lists, paragraphs and
  // line breaks. Anything else stays literal text, which is the safe way to be wrong.

  var WORD = /[A-Za-z0-9\u00C0-\u024F]/;

  // Where the emphasis opened at ``from`` closes: the same run of * or _ (not part of a
  // longer run), not after a space, and for _ not inside a word (snake_case stays as typed).
  function closing(text, from, marker) {
    var c = marker.charAt(0);
    for (var at = text.indexOf(marker, from); at >= 0; at = text.indexOf(marker, at + 1)) {
      var before = text.charAt(at - 1);
      var after = text.charAt(at + marker.length);
      if (/\s/.test(before) || before === c || after === c) continue;
      if (c === '_' && WORD.test(after)) continue;
      return at;
    }
    return -1;
  }

  function inline(text, parent, depth) {
    var buffer = '';
    var i = 0;
    function flush() {
      if (buffer) { parent.appendChild(document.createTextNode(buffer)); buffer = ''; }
    }
    while (i < text.length) {
      var c = text.charAt(i);
      var rest = text.slice(i);
      var m;
      if (c === '\\' && /[\\`*_[\]()#+\-.!>~|]/.test(text.charAt(i + 1))) {
        buffer += text.charAt(i + 1); i += 2; continue;
      }
      if (c === '`') {
        var end = text.indexOf('`', i + 1);
        if (end > i + 1) { flush(); parent.appendChild(el('code', null, text.slice(i + 1, end))); i = end + 1; continue; }
      }
      if (c === '[' && (m = /^\[([^\]]{1,500})\]\(\s*<?([^\s()<>]{1,2000})>?\s*\)/.exec(rest))) {
        flush();
        var href = safeUrl(m[2]);
        if (href && depth < 4) {
          var a = link(href, parent);
          inline(m[1], a, depth + 1);
          newTabNote(a);
        } else {
          inline(m[1], parent, depth + 1);
        }
        i += m[0].length; continue;
      }
      if ((c === 'h' || c === 'H') && /[\s(]|^$/.test(text.charAt(i - 1)) &&
          (m = /^https?:\/\/[^\s<>()]*[^\s<>().,;:!?'"*_]/i.exec(rest))) {
        var bare = safeUrl(m[0]);
        if (bare) {
          flush();
          var auto = link(bare, parent);
          auto.textContent = m[0];
          newTabNote(auto);
          i += m[0].length; continue;
        }
      }
      if (c === '*' || c === '_') {
        var marker = /^(\*+|_+)/.exec(rest)[0];
        var start = i + marker.length;
        if (marker.length <= 2 && depth < 8 && !(c === '_' && WORD.test(text.charAt(i - 1))) &&
            start < text.length && !/\s/.test(text.charAt(start))) {
          var stop = closing(text, start + 1, marker);
          if (stop > start) {
            flush();
            var strong = el(marker.length === 2 ? 'strong' : 'em');
            inline(text.slice(start, stop), strong, depth + 1);
            parent.appendChild(strong);
            i = stop + marker.length; continue;
          }
        }
        buffer += marker; i += marker.length; continue;  // not emphasis: the run as typed
      }
      buffer += c; i += 1;
    }
    flush();
  }

  function lines(parent, texts) {
    texts.forEach(function (line, index) {
      if (index) parent.appendChild(el('br'));
      inline(line, parent, 0);
    });
  }

  function renderMarkdown(markdown, target) {
    var all = String(markdown || '').replace(/\r\n?/g, '\n').split('\n');
    var paragraph = [];
    var list = null;
    var item = null;
    function endParagraph() {
      if (paragraph.length) { lines(target.appendChild(el('p')), paragraph); paragraph = []; }
    }
    function endList() { list = null; item = null; }
    all.forEach(function (line) {
      var bullet = /^\s{0,3}[-*+]\s+(.*)$/.exec(line);
      var numbered = /^\s{0,3}(\d{1,9})[.)]\s+(.*)$/.exec(line);
      var heading = /^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
      if (!line.trim()) { endParagraph(); endList(); return; }
      if (bullet || numbered) {
        endParagraph();
        var kind = bullet ? 'ul' : 'ol';
        if (!list || list.nodeName.toLowerCase() !== kind) {
          list = target.appendChild(el(kind));
          if (numbered && numbered[1] !== '1') list.setAttribute('start', String(parseInt(numbered[1], 10)));
        }
        item = list.appendChild(el('li'));
        inline(bullet ? bullet[1] : numbered[2], item, 0);
        return;
      }
      if (item && /^\s+\S/.test(line)) {  // an indented line continues the list item
        item.appendChild(el('br'));
        inline(line.trim(), item, 0);
        return;
      }
      endList();
      if (heading) {
        endParagraph();
        var p = target.appendChild(el('p'));
        inline(heading[1], p.appendChild(el('strong')), 0);
        return;
      }
      paragraph.push(line);
    });
    endParagraph();
  }

  // -- the chat's state: the session and a short transcript for the next page ---------------

  var state = load() || { session: null, transcript: [] };

  function load() {
    try {
      var saved = JSON.parse(sessionStorage.getItem(storeKey) || 'null');
      if (saved && saved.session && saved.session.expiresAt * 1000 > Date.now() + 60000) return saved;
    } catch (e) { /* storage off or junk in it: start afresh */ }
    return null;
  }

  function save() {
    try {
      state.transcript = state.transcript.slice(-MAX_TRANSCRIPT);
      sessionStorage.setItem(storeKey, JSON.stringify(state));
    } catch (e) { /* private mode or full: the chat still works, it just forgets */ }
  }

  // -- the interface ------------------------------------------------------------------------

  var uid = 'kollega-' + Math.random().toString(36).slice(2, 8);
  var host = inlineId && document.getElementById(inlineId);
  var root = el(host ? 'section' : 'aside', { 'class': 'kollega-root' + (host ? ' kollega-inline' : ''), 'aria-label': t('title') });
  var launcher = null;
  if (!host) {
    launcher = el('button', { type: 'button', 'class': 'kollega-launcher', 'aria-expanded': 'false', 'aria-controls': uid + '-panel' });
    var icon = el('span', { 'class': 'kollega-launcher-icon', 'aria-hidden': 'true' }, '💬');
    launcher.appendChild(icon);
    launcher.appendChild(el('span', { 'class': 'kollega-launcher-text' }, t('open')));
    root.appendChild(launcher);
  }
  var panel = el('div', { 'class': 'kollega-panel', id: uid + '-panel' });
  if (!host) {
    panel.setAttribute('role', 'dialog');
    panel.setAttribute('aria-labelledby', uid + '-title');
    panel.hidden = true;
    var header = el('div', { 'class': 'kollega-header' });
    header.appendChild(el('h2', { 'class': 'kollega-title', id: uid + '-title' }, t('title')));
    var closeButton = el('button', { type: 'button', 'class': 'kollega-close' });
    closeButton.appendChild(el('span', { 'aria-hidden': 'true' }, '×'));
    var closeLabel = closeButton.appendChild(el('span', { 'class': 'kollega-sr' }, t('close')));
    header.appendChild(closeButton);
    panel.appendChild(header);
  }
  var log = el('div', { 'class': 'kollega-log', role: 'log', 'aria-live': 'polite', 'aria-relevant': 'additions', 'aria-label': t('log'), tabindex: '0' });
  var typing = el('div', { 'class': 'kollega-typing', role: 'status' });
  var typingText = el('span', { 'class': 'kollega-typing-text' });
  var dots = el('span', { 'class': 'kollega-dots', 'aria-hidden': 'true' });
  dots.appendChild(el('span'));
  dots.appendChild(el('span'));
  dots.appendChild(el('span'));
  typing.appendChild(dots);
  typing.appendChild(typingText);
  var form = el('form', { 'class': 'kollega-form', novalidate: '' });
  var label = el('label', { 'for': uid + '-input', 'class': 'kollega-sr' }, t('message'));
  var input = el('textarea', { id: uid + '-input', 'class': 'kollega-input', rows: '1', maxlength: '4000', autocomplete: 'off', placeholder: t('message') });
  var sendButton = el('button', { type: 'submit', 'class': 'kollega-send' }, t('send'));
  form.appendChild(label);
  form.appendChild(input);
  form.appendChild(sendButton);
  panel.appendChild(log);
  panel.appendChild(typing);
  panel.appendChild(form);
  root.appendChild(panel);

  function setLanguage(tag) {
    var next = uiLanguage(tag);
    if (!next || next === lang) return;
    lang = next;
    root.setAttribute('aria-label', t('title'));
    if (launcher) launcher.lastChild.textContent = t('open');
    if (!host) { document.getElementById(uid + '-title').textContent = t('title'); closeLabel.textContent = t('close'); }
    log.setAttribute('aria-label', t('log'));
    label.textContent = t('message');
    input.setAttribute('placeholder', t('message'));
    sendButton.textContent = t('send');
    if (typingText.textContent) typingText.textContent = t('typing');
    state.lang = lang;
    save();
  }

  function scrollDown() { log.scrollTop = log.scrollHeight; }

  function showTyping(on) {
    typing.classList.toggle('kollega-typing-on', on);
    typingText.textContent = on ? t('typing') : '';
  }

  function clearActions() {
    var groups = log.querySelectorAll('.kollega-actions');
    for (var i = 0; i < groups.length; i++) groups[i].parentNode.removeChild(groups[i]);
  }

  function addUser(text, remember) {
    var bubble = el('div', { 'class': 'kollega-msg kollega-msg-user' });
    bubble.appendChild(el('span', { 'class': 'kollega-sr' }, t('you') + ': '));
    bubble.appendChild(el('span', { 'class': 'kollega-text' }, text));
    log.appendChild(bubble);
    if (remember) { state.transcript.push({ f: 'u', t: text }); save(); }
    scrollDown();
  }

  function addBot(message, remember) {
    var locale = LOCALE.test(message.locale || '') ? message.locale : null;
    var bubble = el('div', { 'class': 'kollega-msg kollega-msg-bot', lang: locale });
    bubble.appendChild(el('span', { 'class': 'kollega-sr' }, 'kollega: '));
    var body = el('div', { 'class': 'kollega-md' });
    renderMarkdown(message.text, body);
    bubble.appendChild(body);
    log.appendChild(bubble);
    var actions = message.actions || [];
    if (actions.length && remember !== 'history') {
      clearActions();
      var group = el('div', { 'class': 'kollega-actions', role: 'group', 'aria-label': t('suggestions'), lang: locale });
      actions.forEach(function (action) {
        if (action.type === 'openUrl') {
          var href = safeUrl(action.url);
          if (!href) return;
          var a = link(href, group);
          a.className = 'kollega-action';
          a.textContent = action.label || action.url;
          newTabNote(a);
          return;
        }
        if (typeof action.code !== 'string' || !action.code) return;
        var button = el('button', { type: 'button', 'class': 'kollega-action' }, action.label || action.code);
        button.addEventListener('click', function () {
          clearActions();
          input.focus();
          submit(action.code, action.label || action.code);
        });
        group.appendChild(button);
      });
      if (group.childNodes.length) log.appendChild(group);
    }
    if (remember === true) {
      state.transcript.push({ f: 'b', t: String(message.text || ''), l: locale || '' });
      save();
    }
    if (locale) setLanguage(locale);
    scrollDown();
  }

  function notice(text) {
    log.appendChild(el('div', { 'class': 'kollega-msg kollega-msg-notice' }, text));
    scrollDown();
  }

  // -- talking to kollega -------------------------------------------------------------------

  function post(url, body, token, accept) {
    var headers = { 'Content-Type': 'application/json', Accept: accept || 'application/json' };
    if (token) headers.Authorization = 'Bearer ' + token;
    return fetch(url, { method: 'POST', headers: headers, body: JSON.stringify(body), credentials: 'omit', cache: 'no-store' });
  }

  function signInToken() {
    var provider = providerName && window[providerName];
    if (typeof provider !== 'function') return Promise.resolve(null);
    return Promise.resolve().then(provider).then(function (token) {
      return typeof token === 'string' && token ? token : null;
    }, function () { return null; });
  }

  function startSession() {
    return signInToken().then(function (token) {
      return post(api + '/sessions', { locale: pageLocale }, token).then(function (response) {
        if (response.status === 401 && token) {
          // The intranet's token was refused: chat anonymously rather than not at all.
          if (window.console) console.warn('kollega: sign-in token refused; chatting anonymously');
          return post(api + '/sessions', { locale: pageLocale }, null);
        }
        return response;
      });
    }).then(function (response) {
      if (!response.ok) throw response;
      return response.json();
    }).then(function (answer) {
      state = { session: { id: answer.session, token: answer.token, expiresAt: answer.expiresAt }, transcript: [], lang: state.lang };
      save();
      (answer.activities || []).forEach(function (event) { if (event.type === 'message') addBot(event, true); });
      return state.session;
    });
  }

  var sessionReady = null;
  function session() {
    if (state.session) return Promise.resolve(state.session);
    if (!sessionReady) {
      sessionReady = startSession().then(function (s) { sessionReady = null; return s; }, function (e) { sessionReady = null; throw e; });
    }
    return sessionReady;
  }

  function readEvents(response, onEvent) {
    function handle(block) {
      var kind = 'message';
      var data = '';
      block.split('\n').forEach(function (line) {
        if (!line || line.charAt(0) === ':') return;
        var colon = line.indexOf(':');
        var field = colon < 0 ? line : line.slice(0, colon);
        var value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'event') kind = value;
        else if (field === 'data') data += (data ? '\n' : '') + value;
      });
      if (data) { try { onEvent(kind, JSON.parse(data)); } catch (e) { /* a broken event is skipped */ } }
    }
    function split(text) {
      var blocks = text.split('\n\n');
      var tail = blocks.pop();
      blocks.forEach(handle);
      return tail;
    }
    if (!response.body || !response.body.getReader || !window.TextDecoder) {
      return response.text().then(function (text) { handle(split(text + '\n\n')); });
    }
    var reader = response.body.getReader();
    var decoder = new TextDecoder();
    var buffer = '';
    function pump() {
      return reader.read().then(function (chunk) {
        if (chunk.done) { if (buffer.trim()) handle(buffer); return; }
        buffer = split(buffer + decoder.decode(chunk.value, { stream: true }).replace(/\r\n?/g, '\n'));
        return pump();
      });
    }
    return pump();
  }

  function sendOnce(code, retried) {
    return session().then(function (s) {
      return post(api + '/sessions/' + encodeURIComponent(s.id) + '/messages', { text: code, locale: pageLocale }, s.token, 'text/event-stream')
        .then(function (response) {
          if ((response.status === 401 || response.status === 404) && !retried) {
            state.session = null;  // expired, or kollega restarted: a new session, same message
            return sendOnce(code, true);
          }
          if (response.status === 429) { notice(t('busy')); return null; }
          if (!response.ok) throw response;
          return readEvents(response, function (kind, event) {
            if (kind === 'typing') showTyping(true);
            else if (kind === 'message') { showTyping(false); addBot(event, true); }
            else if (kind === 'error') notice(t('error'));
          });
        });
    });
  }

  var queue = Promise.resolve();
  function submit(code, shown) {
    var text = String(code || '');
    if (!text.trim()) return;
    clearActions();
    addUser(shown || text, true);
    queue = queue.then(function () {
      showTyping(true);
      return sendOnce(text, false).catch(function () { notice(t('error')); })
        .then(function () { showTyping(false); });
    });
  }

  form.addEventListener('submit', function (event) {
    event.preventDefault();
    var text = input.value;
    input.value = '';
    submit(text);
    input.focus();
  });

  input.addEventListener('keydown', function (event) {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      if (typeof form.requestSubmit === 'function') form.requestSubmit();
      else form.dispatchEvent(new Event('submit', { cancelable: true }));
    }
  });

  // -- opening and closing ------------------------------------------------------------------

  var started = false;
  function begin() {
    if (started) return;
    started = true;
    state.transcript.forEach(function (entry) {
      if (entry.f === 'u') addUser(entry.t, false);
      else addBot({ text: entry.t, locale: entry.l }, 'history');
    });
    if (state.lang) setLanguage(state.lang);
    if (!state.session) session().catch(function (response) {
      notice(response && response.status === 429 ? t('busy') : t('error'));
    });
  }

  function open() {
    panel.hidden = false;
    launcher.setAttribute('aria-expanded', 'true');
    root.classList.add('kollega-open');
    begin();
    scrollDown();
    input.focus();
  }

  function close() {
    panel.hidden = true;
    launcher.setAttribute('aria-expanded', 'false');
    root.classList.remove('kollega-open');
    launcher.focus();
  }

  if (host) {
    host.appendChild(root);
    begin();
  } else {
    launcher.addEventListener('click', function () { if (panel.hidden) open(); else close(); });
    closeButton.addEventListener('click', close);
    panel.addEventListener('keydown', function (event) {
      if (event.key === 'Escape' || event.key === 'Esc') { event.preventDefault(); close(); }
    });
    document.body.appendChild(root);
  }

  if (!document.querySelector('link[data-kollega-css]') &&
      !document.querySelector('link[href$="/widget.css"]')) {
    document.head.appendChild(el('link', { rel: 'stylesheet', href: staticDir + 'widget.css', 'data-kollega-css': '' }));
  }

  window.kollegaWebChat = { open: host ? function () { input.focus(); } : open, renderMarkdown: renderMarkdown };
})();
