/*
 * console.js - distrod's web console (docs/console.md), the whole of it:
 * no framework, no build step, served from the binary (nacos_console.c).
 *
 * Data: the Nacos API of the node that served the page, with fetch() only:
 *   services   GET /nacos/v1/ns/catalog/services (one page, with counts)
 *              GET /nacos/v1/ns/service/subscribers per row shown (count)
 *   a service  GET /nacos/v1/ns/catalog/instances (with lastBeat)
 *              PUT /nacos/v1/ns/instance (weight, enabled, metadata)
 *              DELETE /nacos/v1/ns/instance (deregister)
 *   cluster    GET /cluster, and the replication-lag histogram of GET /metrics
 *   login      POST /nacos/v1/auth/login -> accessToken
 *
 * Escaping: every name, value and message from the server goes into the
 * page as text (textContent, createElement, attribute properties), never
 * through innerHTML, so a service named "<script>" shows as those eight
 * characters. The CSP (no inline script) is the second line of defence.
 *
 * Authentication: the token from the login answer is kept in
 * sessionStorage (gone with the tab) and sent as the accessToken
 * parameter on every call. Any call answered 403 shows the server's
 * message; a 403 to a read means no (valid) login, so the login form
 * appears, and after a login the view the user wanted comes back.
 *
 * Live updates: the current view is re-read every POLL_MS (2 s) while the
 * tab is visible. Polling, not server-sent events: the reads are one
 * request each and cheap, the Nacos port answers each request on one
 * worker without holding a connection open, and a poll needs nothing new
 * on the server. An open editor is never re-rendered under the user.
 */
'use strict';

(function () {
	const POLL_MS = 2000;
	const TOKEN_KEY = 'distrod.accessToken';
	const USER_KEY = 'distrod.username';
	const NS_API = '/nacos/v1/ns';

	const $ = (id) => document.getElementById(id);

	/* An element with properties (never innerHTML) and children (strings become text). */
	function el(tag, props, ...children) {
		const e = document.createElement(tag);
		if (props) {
			for (const [k, v] of Object.entries(props)) {
				if (k === 'class') e.className = v;
				else if (k === 'data') Object.assign(e.dataset, v);
				else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
				else e[k] = v;
			}
		}
		for (const c of children) {
			if (c === null || c === undefined) continue;
			e.append(c instanceof Node ? c : document.createTextNode(String(c)));
		}
		return e;
	}

	function yesNo(b) {
		return el('span', { class: b ? 'yes' : 'no' }, b ? 'yes' : 'no');
	}

	// ---- the API ----

	class ApiError extends Error {
		constructor(status, message) {
			super(message);
			this.status = status;
		}
	}

	function token() {
		return sessionStorage.getItem(TOKEN_KEY) || '';
	}

	/*
	 * One call: params in the query for GET, in a form body otherwise
	 * (what Nacos clients send). Resolves to the parsed JSON or the text;
	 * rejects with an ApiError carrying the status and the server's message.
	 */
	async function api(method, path, params) {
		const p = new URLSearchParams();
		for (const [k, v] of Object.entries(params || {}))
			if (v !== undefined && v !== null) p.set(k, String(v));
		if (token()) p.set('accessToken', token());
		let url = path;
		const init = { method, headers: {}, cache: 'no-store', credentials: 'same-origin' };
		if (method === 'GET') {
			const q = p.toString();
			if (q) url += '?' + q;
		} else {
			init.headers['Content-Type'] = 'application/x-www-form-urlencoded';
			init.body = p.toString();
		}
		const r = await fetch(url, init);
		const text = await r.text();
		let body = text;
		if ((r.headers.get('Content-Type') || '').includes('json')) {
			try {
				body = JSON.parse(text);
			} catch (_) {
				/* leave the text */
			}
		}
		if (!r.ok) {
			const msg = body && typeof body === 'object' && body.message ? body.message : text;
			throw new ApiError(r.status, String(msg).slice(0, 300));
		}
		return body;
	}

	// ---- banner, status line ----

	function banner(msg) {
		const b = $('banner');
		b.textContent = msg || '';
		b.hidden = !msg;
	}

	function status(msg) {
		$('status').textContent = msg;
	}

	function refusedText(e) {
		if (e instanceof ApiError && e.status === 403)
			return `refused by the server (403): ${e.message}`;
		if (e instanceof ApiError) return `error ${e.status}: ${e.message}`;
		return `error: ${e && e.message ? e.message : e}`;
	}

	// ---- views and routing ----

	const VIEWS = ['login', 'services', 'service', 'cluster'];
	let route = { view: 'services', q: new URLSearchParams() };
	let loginWanted = false; // a read was refused: the login form shows until a login
	let editing = 0; // open editors: the service view is not re-rendered under them

	function parseHash() {
		const h = location.hash.replace(/^#\/?/, '');
		const qi = h.indexOf('?');
		const name = qi < 0 ? h : h.slice(0, qi);
		const q = new URLSearchParams(qi < 0 ? '' : h.slice(qi + 1));
		return { view: VIEWS.includes(name) && name !== 'login' ? name : 'services', q };
	}

	function show(view) {
		for (const v of VIEWS) $('view-' + v).hidden = v !== view;
		$('nav-services').classList.toggle('active', view === 'services' || view === 'service');
		$('nav-cluster').classList.toggle('active', view === 'cluster');
		document.body.dataset.view = view;
	}

	function whoRender() {
		const u = sessionStorage.getItem(USER_KEY);
		$('who-name').textContent = token() && u ? u : '';
		$('logout').hidden = !token();
	}

	function needLogin(e) {
		if (!(e instanceof ApiError) || e.status !== 403) return false;
		if (token()) {
			sessionStorage.removeItem(TOKEN_KEY); // expired or invalid: ask again
			whoRender();
		}
		loginWanted = true;
		$('login-error').textContent = `Log in to continue: the server refused the request (403: ${e.message})`;
		$('login-error').hidden = false;
		show('login');
		return true;
	}

	async function refresh() {
		if (loginWanted) {
			show('login');
			return;
		}
		show(route.view);
		try {
			if (route.view === 'services') await servicesRefresh();
			else if (route.view === 'service') await serviceRefresh();
			else if (route.view === 'cluster') await clusterRefresh();
			status(`updated ${new Date().toLocaleTimeString()} · every ${POLL_MS / 1000} s`);
		} catch (e) {
			if (!needLogin(e)) status(refusedText(e));
		}
	}

	let polling = false;
	async function poll() {
		if (polling || document.hidden) return;
		polling = true;
		try {
			await refresh();
		} finally {
			polling = false;
		}
	}

	// ---- login ----

	async function login(ev) {
		ev.preventDefault();
		const user = $('login-user').value;
		$('login-submit').disabled = true;
		try {
			sessionStorage.removeItem(TOKEN_KEY);
			const r = await api('POST', '/nacos/v1/auth/login',
				{ username: user, password: $('login-pass').value });
			if (!r || typeof r !== 'object' || !r.accessToken)
				throw new ApiError(0, 'the login answer carried no accessToken');
			sessionStorage.setItem(TOKEN_KEY, r.accessToken);
			sessionStorage.setItem(USER_KEY, r.username || user);
			$('login-pass').value = '';
			$('login-error').hidden = true;
			loginWanted = false;
			banner('');
			whoRender();
			await refresh();
		} catch (e) {
			$('login-error').textContent = `Login failed: ${refusedText(e)}`;
			$('login-error').hidden = false;
		} finally {
			$('login-submit').disabled = false;
		}
	}

	function logout() {
		sessionStorage.removeItem(TOKEN_KEY);
		sessionStorage.removeItem(USER_KEY);
		whoRender();
		refresh();
	}

	// ---- services ----

	/*
	 * svc.page belongs to the filters it was chosen under (svc.filters):
	 * a request under other filters starts at page 1. The filters are read
	 * when a request starts, so a poll during the search box's debounce
	 * already shows the new filters, and the debounce firing later does not
	 * throw away a page chosen since.
	 */
	const svc = { page: 1, filters: '', count: 0, sig: '' };

	function svcFilters() {
		return {
			ns: $('f-ns').value.trim() || 'public',
			group: $('f-group').value.trim(),
			name: $('f-name').value.trim(),
			hideEmpty: $('f-hide-empty').checked,
			size: Number($('f-size').value) || 20,
		};
	}

	function pages(count, size) {
		return Math.max(1, Math.ceil(count / size));
	}

	async function subscriberCount(ns, group, name) {
		try {
			const r = await api('GET', NS_API + '/service/subscribers',
				{ namespaceId: ns, serviceName: `${group}@@${name}`, pageNo: 1, pageSize: 1 });
			return typeof r.count === 'number' ? r.count : '?';
		} catch (e) {
			if (e instanceof ApiError && e.status === 403) throw e;
			return '?';
		}
	}

	/*
	 * Answers can overtake each other (a poll and a click in flight at
	 * once): each view renders only the answer to its latest request.
	 */
	const seq = { services: 0, service: 0, cluster: 0 };

	async function servicesRefresh() {
		const my = ++seq.services;
		const f = svcFilters();
		const fs = JSON.stringify(f);
		if (fs !== svc.filters) {
			svc.filters = fs;
			svc.page = 1;
		}
		let page = svc.page;
		const read = () => api('GET', NS_API + '/catalog/services', {
			namespaceId: f.ns, groupNameParam: f.group, serviceNameParam: f.name,
			hasIpCount: f.hideEmpty, pageNo: page, pageSize: f.size,
		});
		let r = await read();
		if (page > pages(r.count, f.size)) { // the set shrank under us: its last page
			page = pages(r.count, f.size);
			r = await read();
		}
		const list = Array.isArray(r.serviceList) ? r.serviceList : [];
		const subs = await Promise.all(list.map((s) => subscriberCount(f.ns, s.groupName, s.name)));
		if (my !== seq.services) return; // a later request renders
		svc.page = page;
		svc.count = r.count;
		// Nothing changed: keep the rows (a link under the pointer stays where it is).
		const sig = JSON.stringify([f, page, r.count, list, subs]);
		if (sig === svc.sig) return;
		svc.sig = sig;
		const rows = list.map((s, i) => {
			const q = new URLSearchParams({ ns: f.ns, group: s.groupName, name: s.name });
			const a = el('a', { href: '#/service?' + q.toString(), class: 'svc-link' }, s.name);
			return el('tr', { class: 'svc-row', data: { name: s.name, group: s.groupName } },
				el('td', { class: 'name' }, a),
				el('td', { class: 'name' }, s.groupName),
				el('td', { class: 'num' }, s.clusterCount),
				el('td', { class: 'num c-ip' }, s.ipCount),
				el('td', { class: 'num c-healthy' }, s.healthyInstanceCount),
				el('td', { class: 'num c-subs' }, subs[i]),
				el('td', null, s.triggerFlag === 'true' ? el('span', { class: 'warn' }, 'threshold reached') : ''));
		});
		if (!rows.length)
			rows.push(el('tr', null, el('td', { class: 'empty', colSpan: 7 }, 'No services match.')));
		$('svc-rows').replaceChildren(...rows);
		const n = pages(r.count, f.size);
		$('pg-info').textContent = `Page ${page} of ${n} · ${r.count} services`;
		$('pg-first').disabled = $('pg-prev').disabled = svc.page <= 1;
		$('pg-next').disabled = $('pg-last').disabled = svc.page >= n;
	}

	function goPage(p) {
		const n = pages(svc.count, svcFilters().size);
		svc.page = Math.min(Math.max(1, Math.floor(p) || 1), n);
		refresh();
	}

	let searchTimer = 0;
	function filtersChanged() {
		clearTimeout(searchTimer);
		searchTimer = setTimeout(refresh, 250);
	}

	// ---- one service ----

	const inst = { page: 1, size: 100, count: 0, sig: '' };

	function svcOfRoute() {
		return {
			ns: route.q.get('ns') || 'public',
			group: route.q.get('group') || 'DEFAULT_GROUP',
			name: route.q.get('name') || '',
		};
	}

	function ago(ms) {
		if (!ms) return 'never';
		const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
		return s < 120 ? `${s} s ago` : s < 7200 ? `${Math.round(s / 60)} min ago` : `${Math.round(s / 3600)} h ago`;
	}

	function metaList(m) {
		const ul = el('ul', { class: 'meta' });
		for (const [k, v] of Object.entries(m || {}))
			ul.append(el('li', { class: 'meta-item' }, `${k}=${v}`));
		return ul;
	}

	function instKey(s, h) {
		return {
			namespaceId: s.ns, serviceName: s.name, groupName: s.group,
			ip: h.ip, port: h.port, clusterName: h.clusterName, ephemeral: h.ephemeral,
		};
	}

	function actionError(cell, e) {
		const p = el('p', { class: 'error action-error' }, refusedText(e));
		cell.querySelectorAll('.action-error').forEach((x) => x.remove());
		cell.append(p);
		banner(refusedText(e));
	}

	function editor(s, h, row) {
		const cell = row.querySelector('.actions-cell');
		const weight = el('input', { type: 'number', min: '0', max: '10000', step: 'any', value: String(h.weight), class: 'e-weight' });
		const enabled = el('input', { type: 'checkbox', checked: !!h.enabled, class: 'e-enabled' });
		const meta = el('textarea', { class: 'e-meta', spellcheck: false, value: JSON.stringify(h.metadata || {}, null, 1) });
		const save = el('button', { type: 'button', class: 'primary e-save' }, 'Save');
		const cancel = el('button', { type: 'button', class: 'e-cancel' }, 'Cancel');
		const form = el('div', { class: 'edit' },
			el('label', { class: 'row' }, 'Weight ', weight),
			el('label', { class: 'row' }, enabled, ' enabled'),
			el('label', null, 'Metadata (a JSON object of strings)', meta),
			el('div', { class: 'row' }, save, cancel));
		editing++;
		let open = true;
		const close = () => {
			if (open) editing--;
			open = false;
			inst.sig = ''; // redraw the row the editor replaced
			refresh();
		};
		cancel.addEventListener('click', close);
		save.addEventListener('click', async () => {
			let md;
			try {
				md = JSON.parse(meta.value || '{}');
				if (!md || typeof md !== 'object' || Array.isArray(md)) throw new Error('not an object');
			} catch (e) {
				actionError(cell, new ApiError(0, `metadata is not a JSON object: ${e.message}`));
				return;
			}
			save.disabled = true;
			try {
				await api('PUT', NS_API + '/instance', Object.assign(instKey(s, h), {
					weight: weight.value, enabled: enabled.checked, healthy: h.healthy,
					metadata: JSON.stringify(md),
				}));
				banner('');
				close();
			} catch (e) {
				save.disabled = false;
				actionError(cell, e);
			}
		});
		cell.replaceChildren(form);
	}

	function deregister(s, h, row, btn) {
		const cell = row.querySelector('.actions-cell');
		const confirmBtn = el('button', { type: 'button', class: 'danger i-confirm' }, 'Confirm deregister');
		const cancel = el('button', { type: 'button', class: 'i-cancel' }, 'Keep');
		editing++;
		let open = true;
		const close = () => {
			if (open) editing--;
			open = false;
			inst.sig = ''; // redraw the row the editor replaced
			refresh();
		};
		cancel.addEventListener('click', close);
		confirmBtn.addEventListener('click', async () => {
			confirmBtn.disabled = true;
			try {
				await api('DELETE', NS_API + '/instance', instKey(s, h));
				banner('');
				close();
			} catch (e) {
				confirmBtn.disabled = false;
				actionError(cell, e);
			}
		});
		btn.replaceWith(el('span', { class: 'actions' }, confirmBtn, cancel));
	}

	async function serviceRefresh() {
		if (editing > 0) return;
		const my = ++seq.service;
		const s = svcOfRoute();
		const page = inst.page;
		$('svc-title').textContent = s.name;
		$('svc-sub').textContent = `namespace ${s.ns} · group ${s.group}`;
		let r;
		try {
			r = await api('GET', NS_API + '/catalog/instances', {
				namespaceId: s.ns, serviceName: s.name, groupName: s.group,
				pageNo: page, pageSize: inst.size,
			});
		} catch (e) {
			if (my !== seq.service) return;
			if (e instanceof ApiError && e.status === 404) {
				$('inst-rows').replaceChildren(el('tr', null, el('td', { class: 'empty', colSpan: 10 }, 'No such service (or no instance left).')));
				$('ipg-info').textContent = '';
				return;
			}
			throw e;
		}
		if (editing > 0 || my !== seq.service) return; // an editor opened, or a later request renders
		inst.count = r.count;
		const list = (Array.isArray(r.list) ? r.list : []).slice()
			.sort((a, b) => (a.ip < b.ip ? -1 : a.ip > b.ip ? 1 : a.port - b.port));
		/*
		 * The same instances as shown: only the "last beat" cells change, so
		 * the rows (and the buttons under the user's pointer) stay.
		 */
		const sig = JSON.stringify([s, page, r.count, list.map((h) => Object.assign({}, h, { lastBeat: 0 }))]);
		if (sig === inst.sig) {
			const beats = document.querySelectorAll('#inst-rows tr.inst-row .i-beat');
			if (beats.length === list.length) {
				list.forEach((h, i) => { beats[i].textContent = ago(h.lastBeat); });
				return;
			}
		}
		inst.sig = sig;
		const rows = list.map((h) => {
			const edit = el('button', { type: 'button', class: 'i-edit' }, 'Edit');
			const del = el('button', { type: 'button', class: 'danger i-deregister' }, 'Deregister');
			const row = el('tr', { class: 'inst-row', data: { ip: h.ip, port: String(h.port) } },
				el('td', { class: 'name' }, h.ip),
				el('td', { class: 'num' }, h.port),
				el('td', { class: 'name' }, h.clusterName),
				el('td', { class: 'num i-weight' }, h.weight),
				el('td', { class: 'i-healthy' }, yesNo(h.healthy)),
				el('td', { class: 'i-enabled' }, yesNo(h.enabled)),
				el('td', null, yesNo(h.ephemeral)),
				el('td', { class: 'i-meta' }, metaList(h.metadata)),
				el('td', { class: 'i-beat', title: h.lastBeat ? new Date(h.lastBeat).toISOString() : '' }, ago(h.lastBeat)),
				el('td', { class: 'actions-cell' }, el('span', { class: 'actions' }, edit, del)));
			edit.addEventListener('click', () => editor(s, h, row));
			del.addEventListener('click', () => deregister(s, h, row, del));
			return row;
		});
		if (!rows.length)
			rows.push(el('tr', null, el('td', { class: 'empty', colSpan: 10 }, 'No instances.')));
		$('inst-rows').replaceChildren(...rows);
		const n = pages(r.count, inst.size);
		if (inst.page > n) inst.page = n;
		$('ipg-info').textContent = `Page ${page} of ${n} · ${r.count} instances`;
		$('ipg-prev').disabled = page <= 1;
		$('ipg-next').disabled = page >= n;
	}

	// ---- cluster ----

	/*
	 * The replication-lag histogram from /metrics (Prometheus text):
	 * [[le seconds, cumulative count], ...] ending with +Inf, or null.
	 */
	function lagBuckets(text) {
		const out = [];
		const re = /^distrod_replication_lag_seconds_bucket\{le="([^"]+)"\} (\d+)$/gm;
		let m;
		while ((m = re.exec(text)) !== null)
			out.push([m[1] === '+Inf' ? Infinity : Number(m[1]), Number(m[2])]);
		return out.length ? out : null;
	}

	/* As PromQL's histogram_quantile: linear inside the bucket; the last finite bound past it. */
	function quantile(q, b) {
		const total = b[b.length - 1][1];
		if (!total) return null;
		const rank = q * total;
		let prevLe = 0, prevC = 0;
		for (const [le, c] of b) {
			if (c >= rank) {
				if (le === Infinity) return { ms: prevLe * 1000, over: true };
				const within = c - prevC ? (rank - prevC) / (c - prevC) : 1;
				return { ms: (prevLe + (le - prevLe) * within) * 1000, over: false };
			}
			prevLe = le;
			prevC = c;
		}
		return null;
	}

	function fmtQ(x) {
		if (!x) return '—';
		return `${x.over ? '> ' : ''}${x.ms < 10 ? x.ms.toFixed(1) : Math.round(x.ms)} ms`;
	}

	function maxBucket(b) {
		let prev = 0, le = null;
		for (const [l, c] of b) {
			if (c > prev) le = l;
			prev = c;
		}
		return le === null ? '—' : le === Infinity ? '> 10 s' : `≤ ${le * 1000} ms`;
	}

	let lastLag = null;

	function lagRows(b) {
		const rows = [['since start', b]];
		if (lastLag && lastLag.length === b.length)
			rows.unshift(['last refresh', b.map(([le, c], i) => [le, Math.max(0, c - lastLag[i][1])])]);
		lastLag = b;
		return rows.map(([name, h]) => el('tr', { class: 'lag-row', data: { window: name } },
			el('td', null, name),
			el('td', { class: 'num lag-count' }, h[h.length - 1][1]),
			el('td', { class: 'num' }, fmtQ(quantile(0.5, h))),
			el('td', { class: 'num' }, fmtQ(quantile(0.99, h))),
			el('td', { class: 'num' }, maxBucket(h))));
	}

	const STAT_ORDER = [
		'sync_records_out', 'sync_records_in', 'sync_dropped', 'sync_frames_out', 'sync_frames_in',
		'verify_rounds', 'verify_mismatch', 'repair_slots', 'repair_records', 'repair_abandoned',
		'fwd_items', 'fwd_unavailable', 'fwd_served', 'takeover_slots', 'map_changes', 'links_up',
		'auth_failures', 'proto_errors',
	];
	let lastStats = null;

	function fmtBytes(n) {
		return n < 1024 ? `${n} B` : n < 1048576 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1048576).toFixed(1)} MiB`;
	}

	async function clusterRefresh() {
		const my = ++seq.cluster;
		const [r, metrics] = await Promise.all([api('GET', '/cluster', {}),
			api('GET', '/metrics', {}).catch(() => '')]);
		if (my !== seq.cluster) return;
		const lag = typeof metrics === 'string' ? lagBuckets(metrics) : null;
		$('cl-lag-rows').replaceChildren(...(lag ? lagRows(lag)
			: [el('tr', null, el('td', { class: 'empty', colSpan: 5 }, 'no replication-lag histogram in /metrics'))]));
		if (!r.clustered) {
			$('cl-summary').textContent = 'A standalone node: no cluster (start distrod with --cluster to form one).';
			$('cl-rows').replaceChildren(el('tr', null, el('td', { class: 'empty', colSpan: 9 }, 'standalone')));
			$('cl-stat-rows').replaceChildren();
			return;
		}
		const members = Array.isArray(r.members) ? r.members : [];
		const up = members.filter((m) => m.health === 'UP').length;
		$('cl-summary').textContent = `${members.length} members, ${up} up · this node: member ${r.self}, ` +
			`${r.ready ? 'READY' : 'not READY'}, ${r.quorum ? 'quorum' : 'NO QUORUM'} · slot map version ${r.map_version}`;
		$('cl-rows').replaceChildren(...members.map((m) => el('tr', { class: 'member-row', data: { id: String(m.id) } },
			el('td', { class: 'num' }, m.id, m.self ? ' (this node)' : ''),
			el('td', { class: 'name' }, m.addr),
			el('td', { class: 'name' }, m.client_addr || '—'),
			el('td', { class: 'm-health' }, el('span', { class: m.health === 'UP' ? 'yes' : m.health === 'DOWN' ? 'no' : 'warn' }, m.health)),
			el('td', { class: 'm-ready' }, yesNo(m.ready)),
			el('td', { class: 'num m-slots' }, m.slots),
			el('td', { class: 'num' }, m.self ? '—' : m.last_rx_ms === null ? 'never' : `${m.last_rx_ms} ms ago`),
			el('td', { class: 'num' }, m.self ? '—' : fmtBytes(m.backlog_bytes)),
			el('td', { class: 'num' }, m.map_version))));
		const now = Date.now();
		const st = r.stats || {};
		const names = STAT_ORDER.filter((k) => k in st).concat(Object.keys(st).filter((k) => !STAT_ORDER.includes(k)));
		$('cl-stat-rows').replaceChildren(...names.map((k) => {
			let rate = '';
			if (lastStats && now > lastStats.t && k in lastStats.v)
				rate = ((st[k] - lastStats.v[k]) * 1000 / (now - lastStats.t)).toFixed(1);
			return el('tr', { class: 'stat-row', data: { name: k } },
				el('td', { class: 'name' }, k), el('td', { class: 'num' }, st[k]), el('td', { class: 'num' }, rate));
		}));
		lastStats = { t: now, v: st };
	}

	// ---- start ----

	function onHash() {
		route = parseHash();
		if (route.view === 'service') inst.page = 1;
		refresh();
	}

	document.addEventListener('DOMContentLoaded', () => {
		$('login-form').addEventListener('submit', login);
		$('logout').addEventListener('click', logout);
		for (const id of ['f-ns', 'f-group', 'f-name']) $(id).addEventListener('input', filtersChanged);
		for (const id of ['f-hide-empty', 'f-size']) $(id).addEventListener('change', refresh);
		$('svc-filters').addEventListener('submit', (e) => e.preventDefault());
		$('pg-first').addEventListener('click', () => goPage(1));
		$('pg-prev').addEventListener('click', () => goPage(svc.page - 1));
		$('pg-next').addEventListener('click', () => goPage(svc.page + 1));
		$('pg-last').addEventListener('click', () => goPage(pages(svc.count, svcFilters().size)));
		$('pg-go').addEventListener('change', () => goPage(Number($('pg-go').value)));
		$('ipg-prev').addEventListener('click', () => { inst.page = Math.max(1, inst.page - 1); refresh(); });
		$('ipg-next').addEventListener('click', () => { inst.page++; refresh(); });
		window.addEventListener('hashchange', onHash);
		document.addEventListener('visibilitychange', poll);
		whoRender();
		onHash();
		setInterval(poll, POLL_MS);
	});
})();
