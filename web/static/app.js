// configd web UI: local times, the live timeline, a rollout's live
// convergence and the rollback dialog.
//
// Everything that comes from the server as data (keys, values, reasons,
// actor names) is put into the page with textContent or as an attribute
// value, never parsed as HTML.
(function () {
  'use strict';

  var body = document.body;
  var base = body.dataset.base || '/ui';
  var api = body.dataset.api || '/v1';
  var csrf = body.dataset.csrf || '';
  // The watch the live timeline uses: under the UI's path (where the
  // session cookie goes) when the server offers it, else the API's.
  var watchBase = body.dataset.watchUrl || (api + '/watch');
  // The store's revision when the page was rendered: what the page shows.
  var pageRev = Number(body.dataset.rev || 0);

  // --- Who the user is --------------------------------------------------
  // uiActor is the one place that says who makes a rollback. Until
  // configd has authentication it is the name typed in the dialog,
  // remembered in localStorage; the server's ActorFunc decides in the end.
  var ACTOR_KEY = 'configd.actor';
  function uiActor() {
    try {
      return localStorage.getItem(ACTOR_KEY) || 'web';
    } catch (e) {
      return 'web';
    }
  }
  function rememberActor(name) {
    try {
      if (name) localStorage.setItem(ACTOR_KEY, name);
      else localStorage.removeItem(ACTOR_KEY);
    } catch (e) { /* private mode: not remembered */ }
  }

  // --- Helpers ------------------------------------------------------------
  function $(id) { return document.getElementById(id); }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function keyURL(key) {
    return base + '/key/' + key.split('/').map(encodeURIComponent).join('/');
  }
  function revURL(rev) { return base + '/rev/' + rev; }
  function plural(n, word) { return n + ' ' + word + (n === 1 ? '' : 's'); }

  // --- Times: shown in local time, UTC in the title ---------------------------
  function pad(n) { return (n < 10 ? '0' : '') + n; }
  function localizeTime(t) {
    var d = new Date(t.getAttribute('datetime'));
    if (isNaN(d.getTime())) return;
    t.textContent = d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' ' +
      pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds());
  }
  function localizeTimes(root) {
    var ts = root.querySelectorAll('time.ts[datetime]');
    for (var i = 0; i < ts.length; i++) localizeTime(ts[i]);
  }

  // --- Diffs (same markup as the diff-lines template) -------------------------
  var lineClass = { '+': 'add', '-': 'del', '…': 'skip', ' ': 'same' };
  function renderChange(c) {
    var sec = el('section', 'change');
    var head = el('header', 'change-head');
    var h = el('h3');
    var a = el('a', null, c.key);
    a.href = keyURL(c.key);
    h.appendChild(a);
    head.appendChild(h);
    head.appendChild(el('span', 'op op-' + c.op, c.op));
    sec.appendChild(head);
    (c.notes || []).forEach(function (n) { sec.appendChild(el('p', 'note', n)); });
    var d = el('div', 'diff');
    d.tabIndex = 0;
    d.setAttribute('aria-label', 'diff of ' + c.key);
    (c.lines || []).forEach(function (l) {
      var row = el('div', 'dl ' + (lineClass[l.k] || 'same'));
      var o = el('span', 'ln', l.o || '');
      var n = el('span', 'ln', l.n || '');
      o.setAttribute('aria-hidden', 'true');
      n.setAttribute('aria-hidden', 'true');
      row.appendChild(o);
      row.appendChild(n);
      row.appendChild(el('span', 'mk', l.k));
      row.appendChild(el('code', null, l.t));
      d.appendChild(row);
    });
    sec.appendChild(d);
    return sec;
  }

  // --- Timeline filters -------------------------------------------------------
  function initFilters() {
    var f = $('filters');
    if (!f) return;
    // On a phone the filters fold away until used.
    var box = $('filter-box');
    if (box && box.dataset.filtered !== 'true' && window.matchMedia && window.matchMedia('(max-width: 720px)').matches) {
      box.open = false;
    }
    f.addEventListener('submit', function () {
      // The time inputs are in local time: tell the server the offset.
      var tz = $('tz');
      if (f.elements.from.value || f.elements.to.value) tz.value = String(-new Date().getTimezoneOffset());
      // Leave empty fields out of the URL.
      Array.prototype.forEach.call(f.elements, function (e) {
        if (e.name && !e.value) e.disabled = true;
      });
      setTimeout(function () {
        Array.prototype.forEach.call(f.elements, function (e) { e.disabled = false; });
      }, 0);
    });
  }

  // --- Live timeline ----------------------------------------------------------
  // The watch API says when something changed; the rows themselves come
  // from timeline.json, which applies the page's filters.
  function initLive() {
    var status = $('live');
    var tbody = $('rows');
    var tpl = $('row-tpl');
    if (!status || !tbody || !tpl) return;
    var watchPrefix = status.dataset.watch || '';
    var since = pageRev; // the watch's position
    var shown = pageRev; // rows newer than this are fetched
    var fetching = false;
    var again = false;
    var backoff = 1000;
    var filters = new URLSearchParams(location.search);
    filters.delete('before');
    var announce = el('p', 'vh');
    announce.setAttribute('aria-live', 'polite');
    status.parentNode.appendChild(announce);

    function setStatus(text, on) {
      status.textContent = text;
      status.className = 'live ' + (on ? 'on' : 'off');
    }
    function retry(fn) {
      var wait = backoff + Math.random() * backoff / 2;
      backoff = Math.min(backoff * 2, 30000);
      setTimeout(fn, wait);
    }

    function fillRow(row) {
      var tr = tpl.content.firstElementChild.cloneNode(true);
      tr.id = 'r' + row.rev;
      tr.dataset.rev = String(row.rev);
      var a = tr.querySelector('.c-rev a');
      a.href = revURL(row.rev);
      a.textContent = String(row.rev);
      var t = tr.querySelector('time');
      t.setAttribute('datetime', row.time);
      t.title = row.utc;
      t.textContent = row.utc;
      localizeTime(t);
      tr.querySelector('.c-actor').textContent = row.actor;
      var badge = tr.querySelector('.badge');
      badge.textContent = row.origin;
      badge.className = 'badge ' + row.origin_class;
      badge.title = 'origin: ' + row.origin_raw;
      if (row.rollback_to) {
        var to = el('a', 'to', 'to r' + row.rollback_to);
        to.href = revURL(row.rollback_to);
        badge.parentNode.appendChild(document.createTextNode(' '));
        badge.parentNode.appendChild(to);
      }
      tr.querySelector('.c-reason').textContent = row.reason;
      tr.querySelector('.n').textContent = plural(row.num_changes, 'key');
      var scoped = tr.querySelector('.scoped');
      if (row.scoped !== row.num_changes) scoped.textContent = '(' + row.scoped + ' under the prefix)';
      else scoped.remove();
      var ul = tr.querySelector('.keys');
      row.keys.forEach(function (k) {
        var li = el('li');
        var ka = el('a', null, k.key);
        ka.href = keyURL(k.key);
        li.appendChild(ka);
        ul.appendChild(li);
      });
      if (row.more) ul.appendChild(el('li', 'more', '+' + row.more + ' more'));
      return tr;
    }

    function addRows(rows) {
      var added = [];
      for (var i = rows.length - 1; i >= 0; i--) { // oldest first, each on top
        var row = rows[i];
        if ($('r' + row.rev)) continue;
        var empty = $('empty-row');
        if (empty) empty.remove();
        tbody.insertBefore(fillRow(row), tbody.firstChild);
        added.push(row);
      }
      if (added.length) {
        var last = added[added.length - 1];
        announce.textContent = plural(added.length, 'new revision') + ', newest r' + last.rev + ' by ' + last.actor;
      }
    }

    function refresh() {
      if (fetching) {
        again = true;
        return;
      }
      fetching = true;
      var q = new URLSearchParams(filters);
      q.set('after', String(shown));
      fetch(base + '/timeline.json?' + q.toString(), { headers: { Accept: 'application/json' }, credentials: 'same-origin' })
        .then(function (r) {
          if (!r.ok) throw new Error('HTTP ' + r.status);
          return r.json();
        })
        .then(function (j) {
          addRows(j.rows);
          shown = Math.max(shown, j.rev);
          if (j.gap) {
            var n = $('live-gap') || el('p', 'notice');
            n.id = 'live-gap';
            n.textContent = 'More revisions arrived than the live view adds at once: reload the page to see them all.';
            status.parentNode.after(n);
          }
        })
        .catch(function (e) { setStatus('Live, but new rows failed to load (' + e.message + ')', false); })
        .then(function () {
          fetching = false;
          if (again) {
            again = false;
            refresh();
          }
        });
    }

    function watchURL() {
      return watchBase + '?prefix=' + encodeURIComponent(watchPrefix) + '&since=' + since;
    }

    function advance(e) {
      var id = Number(e.lastEventId);
      if (id > since) since = id;
    }

    function connectSSE() {
      var es = new EventSource(watchURL());
      es.onopen = function () {
        setStatus('Live', true);
        backoff = 1000;
      };
      es.addEventListener('changes', function (e) { advance(e); refresh(); });
      es.addEventListener('snapshot', function (e) { advance(e); refresh(); });
      es.addEventListener('progress', advance);
      es.addEventListener('resync', function (e) {
        // The watch fell behind; come back from where it was.
        es.close();
        refresh();
        retry(connectSSE);
      });
      es.onerror = function () {
        // Reconnect ourselves, from the newest revision seen (the
        // browser's own retry would resend the original since).
        es.close();
        setStatus('Reconnecting…', false);
        retry(connectSSE);
      };
    }

    var polled = false;
    function poll() {
      // The first poll answers at once, so the status says "live" soon.
      fetch(watchURL() + (polled ? '&wait=30s' : '&wait=0s'), { headers: { Accept: 'application/json' }, credentials: 'same-origin' })
        .then(function (r) {
          if (!r.ok) throw new Error('HTTP ' + r.status);
          return r.json();
        })
        .then(function (j) {
          setStatus('Live (long poll)', true);
          backoff = 1000;
          polled = true;
          var changed = (j.batches || []).some(function (b) { return b.kind !== 'progress'; });
          if (j.rev > since) since = j.rev;
          if (changed) refresh();
          poll();
        })
        .catch(function () {
          setStatus('Reconnecting…', false);
          retry(poll);
        });
    }

    if (window.EventSource) connectSSE();
    else poll();
  }

  // --- Rollback dialog --------------------------------------------------------
  function initRollback() {
    var dlg = $('rb');
    if (!dlg || typeof dlg.showModal !== 'function') return;
    var form = $('rb-form');
    var keyChoice = $('rb-key-choice');
    var scopeKey = $('rb-scope-key');
    var scopePrefix = $('rb-scope-prefix');
    var scopeAll = $('rb-scope-all');
    var keyEl = $('rb-key');
    var prefixEl = $('rb-prefix');
    var toEl = $('rb-to');
    var toHint = $('rb-to-hint');
    var notice = $('rb-notice');
    var previewEl = $('rb-preview');
    var summary = $('rb-summary');
    var diffEl = $('rb-diff');
    var reasonEl = $('rb-reason');
    var actorEl = $('rb-actor');
    var confirmBtn = $('rb-confirm');
    var cancelBtn = $('rb-cancel');
    var state = null;
    var opener = null;
    var timer = 0;

    function scope() {
      if (scopeKey.checked) return 'key';
      if (scopePrefix.checked) return 'prefix';
      return 'all';
    }
    function showNotice(text) {
      notice.textContent = text;
      notice.hidden = false;
    }
    function hideNotice() {
      notice.textContent = '';
      notice.hidden = true;
    }
    function updateConfirm() {
      var n = state && state.changes ? state.changes : 0;
      confirmBtn.disabled = !state || state.busy || !state.ready || n === 0 || !reasonEl.value.trim();
      if (!state || !state.busy) {
        confirmBtn.textContent = n > 0 ? 'Roll back ' + plural(n, 'key') + ' to r' + state.to : 'Roll back';
      }
    }
    function request(dry) {
      var b = { scope: scope(), to: Number(toEl.value), dry_run: dry, expect_rev: state.expect, actor: uiActor() };
      if (b.scope === 'key') b.key = state.key;
      if (b.scope === 'prefix') b.prefix = prefixEl.value.trim();
      if (!dry) b.reason = reasonEl.value;
      return b;
    }
    function post(b) {
      return fetch(base + '/rollback', {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf, Accept: 'application/json' },
        body: JSON.stringify(b)
      }).then(function (r) {
        return r.json().catch(function () { return {}; }).then(function (j) { return { status: r.status, j: j }; });
      });
    }
    function errorText(res) {
      return (res.j && res.j.error && res.j.error.message) || ('The server answered HTTP ' + res.status + '.');
    }
    function renderPreview(j, to) {
      while (diffEl.firstChild) diffEl.removeChild(diffEl.firstChild);
      var changes = j.changes || [];
      state.changes = changes.length;
      state.to = to;
      if (changes.length === 0) {
        summary.textContent = 'Nothing to roll back: this scope already equals revision ' + to + '.';
      } else {
        summary.textContent = 'Rolling back to r' + to + ' will change ' + plural(changes.length, 'key') +
          ' (diff from the current value, as of r' + j.rev + ', to the value at r' + to + '):';
      }
      changes.forEach(function (c) { diffEl.appendChild(renderChange(c)); });
    }
    function preview() {
      clearTimeout(timer);
      var to = Number(toEl.value);
      state.ready = false;
      state.seq++;
      var seq = state.seq;
      updateConfirm();
      if (!(to >= 1)) {
        summary.textContent = 'Give a revision number (1 or more).';
        return;
      }
      toHint.textContent = '';
      summary.textContent = 'Computing the diff…';
      previewEl.setAttribute('aria-busy', 'true');
      post(request(true)).then(function (res) {
        if (!state || seq !== state.seq) return; // a newer preview is on its way
        previewEl.setAttribute('aria-busy', 'false');
        if (res.status === 409 && res.j.conflict) {
          state.expect = res.j.rev;
          showNotice(errorText(res));
        } else if (res.status !== 200) {
          while (diffEl.firstChild) diffEl.removeChild(diffEl.firstChild);
          summary.textContent = '';
          showNotice(errorText(res));
          return;
        }
        renderPreview(res.j, to);
        state.ready = true;
        updateConfirm();
      }).catch(function (e) {
        if (state && seq === state.seq) showNotice('The diff could not be loaded: ' + e.message);
      });
    }
    function later() {
      clearTimeout(timer);
      timer = setTimeout(preview, 350);
    }

    function open(btn) {
      opener = btn;
      var d = btn.dataset;
      state = { key: d.key || '', expect: pageRev, seq: 0, ready: false, busy: false, changes: 0, to: 0 };
      keyChoice.hidden = !state.key;
      keyEl.textContent = state.key;
      prefixEl.value = d.prefix || '';
      if (d.scope === 'key' && state.key) scopeKey.checked = true;
      else if (d.scope === 'prefix') scopePrefix.checked = true;
      else scopeAll.checked = true;
      toEl.value = d.to || '';
      reasonEl.value = '';
      actorEl.value = uiActor();
      hideNotice();
      summary.textContent = '';
      while (diffEl.firstChild) diffEl.removeChild(diffEl.firstChild);
      dlg.showModal();
      preview();
    }

    document.addEventListener('click', function (e) {
      var btn = e.target.closest && e.target.closest('button.rb-open');
      if (btn) open(btn);
    });
    [scopeKey, scopePrefix, scopeAll].forEach(function (r) { r.addEventListener('change', preview); });
    prefixEl.addEventListener('input', function () {
      scopePrefix.checked = true;
      later();
    });
    toEl.addEventListener('input', later);
    reasonEl.addEventListener('input', updateConfirm);
    actorEl.addEventListener('change', function () { rememberActor(actorEl.value.trim()); });
    cancelBtn.addEventListener('click', function () { dlg.close('cancel'); });
    dlg.addEventListener('close', function () {
      if (state) state.seq++; // drop answers still on their way
      state = null;
      clearTimeout(timer);
      if (opener && document.contains(opener)) opener.focus();
    });

    // Keep Tab and Shift+Tab inside the dialog. (Esc closes a modal dialog
    // natively: the "cancel" event, then "close".)
    dlg.addEventListener('keydown', function (e) {
      if (e.key !== 'Tab') return;
      var all = dlg.querySelectorAll('a[href], button:not([disabled]), input:not([disabled]):not([type="hidden"]), textarea:not([disabled]), [tabindex]:not([tabindex="-1"])');
      var items = Array.prototype.filter.call(all, function (x) {
        return x.getClientRects().length > 0 && !(x.type === 'radio' && !x.checked);
      });
      if (!items.length) return;
      var first = items[0];
      var last = items[items.length - 1];
      if (e.shiftKey && (document.activeElement === first || !dlg.contains(document.activeElement))) {
        e.preventDefault();
        last.focus();
      } else if (!e.shiftKey && document.activeElement === last) {
        e.preventDefault();
        first.focus();
      }
    });

    form.addEventListener('submit', function (e) {
      e.preventDefault();
      if (!state || !state.ready || state.busy) return;
      if (!reasonEl.value.trim()) {
        showNotice('Say why: a rollback needs a reason.');
        reasonEl.focus();
        return;
      }
      rememberActor(actorEl.value.trim());
      var to = Number(toEl.value);
      state.busy = true;
      confirmBtn.textContent = 'Rolling back…';
      updateConfirm();
      post(request(false)).then(function (res) {
        if (!state) return;
        state.busy = false;
        if (res.status === 200) {
          if (res.j.changed && res.j.url) {
            location.assign(res.j.url); // the new revision's page
            return;
          }
          showNotice('Nothing changed: the scope already equals revision ' + to + '.');
          renderPreview(res.j, to);
        } else if (res.status === 409 && res.j.conflict) {
          // Someone changed the scope since the page was loaded: show
          // the diff as it is now; the user confirms again.
          state.expect = res.j.rev;
          showNotice(errorText(res));
          renderPreview(res.j, to);
        } else {
          showNotice(errorText(res));
        }
        updateConfirm();
      }).catch(function (err) {
        if (!state) return;
        state.busy = false;
        showNotice('The rollback request failed: ' + err.message);
        updateConfirm();
      });
    });
  }

  // --- A rollout's convergence --------------------------------------------------
  // Clients report what they applied on their own schedule, not as
  // revisions: the page asks for the status part every few seconds while
  // the rollout runs and the tab is shown, and fills it in place.
  function initRollout() {
    var sec = $('ro-status');
    if (!sec || sec.dataset.running !== 'true') return;
    var live = $('ro-live');
    var tpl = $('ro-client-tpl');
    var every = 2000;
    var wait = every;
    var timer = 0;
    var busy = false;

    function setLive(text, on) {
      live.textContent = text;
      live.className = 'live ' + (on ? 'on' : 'off');
    }
    function text(id, v) {
      var e = $(id);
      if (e) e.textContent = String(v);
    }
    function clientRow(c) {
      var tr = tpl.content.firstElementChild.cloneNode(true);
      tr.querySelector('.instance code').textContent = c.instance;
      tr.querySelector('.labels').textContent = c.labels;
      tr.querySelector('.joined').textContent = String(c.step);
      tr.querySelector('.rev').textContent = c.rev ? 'r' + c.rev : '';
      var badge = tr.querySelector('.state .badge');
      badge.textContent = c.state;
      badge.className = 'badge st-' + c.state;
      var rej = tr.querySelector('.rejection');
      if (c.rejection) {
        if (!rej) {
          rej = el('span', 'rejection');
          badge.parentNode.appendChild(document.createTextNode(' '));
          badge.parentNode.appendChild(rej);
        }
        rej.textContent = c.rejection;
      } else if (rej) {
        rej.remove();
      }
      return tr;
    }
    function fill(s) {
      var state = $('ro-state');
      state.textContent = s.state;
      state.className = 'badge st-' + s.state;
      text('ro-step', s.step);
      text('ro-selector', s.selector);
      text('ro-counts', s.applied + ' of ' + s.in_step + ' clients applied, ' + s.rejected + ' rejected, ' + s.behind + ' behind');
      text('ro-bake', s.bake);
      s.step_rows.forEach(function (row) {
        var tr = sec.querySelector('tr.ro-step[data-n="' + row.n + '"]');
        if (!tr) return;
        tr.className = 'ro-step place-' + row.place;
        tr.querySelector('.in').textContent = String(row.in_step);
        tr.querySelector('.applied').textContent = String(row.applied);
        tr.querySelector('.rejected').textContent = String(row.rejected);
        tr.querySelector('.behind').textContent = String(row.behind);
        var first = tr.firstElementChild;
        var cur = first.querySelector('.badge');
        if (row.place === 'current' && !cur) {
          cur = el('span', 'badge st-active', 'current');
          first.appendChild(document.createTextNode(' '));
          first.appendChild(cur);
        } else if (row.place !== 'current' && cur) {
          cur.remove();
        }
      });
      var tbody = $('ro-clients');
      var rows = document.createDocumentFragment();
      s.clients.forEach(function (c) { rows.appendChild(clientRow(c)); });
      if (!s.clients.length) {
        var none = el('tr', 'ro-none');
        var td = el('td', 'muted', 'No client in the step.');
        td.colSpan = 5;
        none.appendChild(td);
        rows.appendChild(none);
      }
      tbody.replaceChildren(rows);
      if (!s.running) {
        // Finished (the driver completed or aborted it): no more actions.
        var actions = $('ro-actions');
        if (actions) actions.remove();
      }
    }
    function schedule() {
      clearTimeout(timer);
      if (!document.hidden) timer = setTimeout(tick, wait);
    }
    function tick() {
      if (busy) return;
      busy = true;
      clearTimeout(timer);
      fetch(base + '/rollouts/' + sec.dataset.id + '/status.json', { headers: { Accept: 'application/json' }, credentials: 'same-origin' })
        .then(function (r) {
          if (!r.ok) throw new Error('HTTP ' + r.status);
          return r.json();
        })
        .then(function (s) {
          busy = false;
          fill(s);
          wait = every;
          sec.dataset.running = String(s.running);
          sec.dataset.updated = String(Date.now());
          if (!s.running) {
            setLive('finished', false);
            live.className = 'live';
            return;
          }
          setLive('Live · ' + new Date().toLocaleTimeString(), true);
          schedule();
        })
        .catch(function (e) {
          busy = false;
          setLive('Reconnecting… (' + e.message + ')', false);
          wait = Math.min(wait * 2, 30000);
          schedule();
        });
    }
    document.addEventListener('visibilitychange', function () {
      if (!document.hidden && sec.dataset.running === 'true') tick();
    });
    setLive('Live', true);
    schedule();
  }

  localizeTimes(document);
  initFilters();
  initRollback();
  initLive();
  initRollout();
  body.dataset.ready = 'true';
})();
