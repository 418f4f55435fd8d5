'use strict';
/*
 * console.js - distrod's web console (src/console/, docs/console.md) in a
 * real browser: Debian's headless Chromium driven by puppeteer-core (the
 * version pinned in CMakeLists.txt; it brings no browser of its own),
 * against real distrod processes this script starts itself.
 *
 *   node console.js --distrod BIN --modules DIR --mode standalone|cluster|auth
 *        [--distroctl BIN] [--chromium BIN] [--screenshots DIR]
 *
 * standalone  one node: the services list with its counts (instances,
 *             healthy, subscribers), search and paging over 2,000
 *             services, a hostile service name and hostile metadata shown
 *             as text with no script run, an edit (weight, enabled,
 *             metadata) and a deregistration clicked in the page and
 *             checked through the API
 * cluster     three nodes: the cluster view shows the three members UP and
 *             READY with their slots; the page on one node lists what was
 *             registered through another, and an edit and a deregistration
 *             clicked there reach every node's store
 * auth        one node with --auth-users (needs --distroctl for the hash):
 *             the login form appears, a wrong password is refused, an action
 *             whose login is gone is refused 403 by the server and the page
 *             says so (the instance stays), after a login it works
 *
 * --screenshots DIR writes the pages (services, service, cluster, login)
 * into DIR as PNGs; without it nothing is written outside a private
 * temporary directory, so ordinary runs never touch docs/console/.
 *
 * Processes: every distrod runs under `setpriv --pdeathsig KILL` on
 * 127.0.0.1 with --port 0, --http-port 0 and --nacos-port 0 and the
 * *-port-file options (the peer ports of a cluster are picked by listening
 * on port 0, as tests/nacos/lifecycle.js does, since cluster.conf must
 * name them). Chromium is launched by puppeteer with --no-sandbox (the
 * tests run as root) and dies with the script. Every wait is bounded and
 * polls a condition; nothing sleeps as an assertion. Any uncaught error in
 * the page, any console error (a CSP violation is one) fails the test.
 *
 * Instance addresses are documentation ranges (192.0.2.0/24,
 * 198.18.0.0/15): nothing connects to them.
 *
 * Exit status: 0 passed, 1 failed (with the step and what was seen).
 */

const { spawn, execFileSync } = require('child_process');
const dgram = require('dgram');
const fs = require('fs');
const http = require('http');
const net = require('net');
const os = require('os');
const path = require('path');
const util = require('util');

// ---- arguments ----

function parseArgs(argv) {
	const a = { chromium: '/usr/bin/chromium' };
	for (let i = 0; i < argv.length; i += 2) {
		const k = argv[i];
		const v = argv[i + 1];
		if (k === '--distrod') a.distrod = v;
		else if (k === '--distroctl') a.distroctl = v;
		else if (k === '--modules') a.modules = v;
		else if (k === '--mode') a.mode = v;
		else if (k === '--chromium') a.chromium = v;
		else if (k === '--screenshots') a.screenshots = path.resolve(v);
		else throw new Error(`unknown argument ${k}`);
	}
	if (!a.distrod || !a.modules || !['standalone', 'cluster', 'auth'].includes(a.mode) ||
		(a.mode === 'auth' && !a.distroctl))
		throw new Error('usage: console.js --distrod BIN --modules DIR ' +
			'--mode standalone|cluster|auth [--distroctl BIN] [--chromium BIN] [--screenshots DIR]');
	return a;
}

const args = parseArgs(process.argv.slice(2));
const PUPPETEER = path.resolve(args.modules, 'node_modules', 'puppeteer-core');
const PINNED = '24.43.1';
const START_MS = 20000; // a node (ASan build) listens, and a cluster is READY, within this
const UI_MS = 10000; // the page shows a change: it polls every 2 s, this is the bound
const BULK = 2000; // services for paging and search
const AUTH_USER = 'console';
const AUTH_PASSWORD = 'console pw&=';

const t0 = Date.now();
function say(...a) {
	process.stdout.write(`+${((Date.now() - t0) / 1000).toFixed(3)}s ${util.format(...a)}\n`);
}

class Failure extends Error {}
function fail(msg) {
	throw new Failure(msg);
}
function napMs(ms) {
	return new Promise(r => setTimeout(r, ms));
}

// ---- processes ----

const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'distro-console-'));
const nodes = []; // {i, proc, nacosPort, adminPort, peerPort, log, exited}
let browser = null;

function cleanup() {
	for (const n of nodes)
		if (n.proc && n.proc.exitCode === null && n.proc.signalCode === null)
			try {
				process.kill(n.proc.pid, 'SIGKILL');
			} catch (_) { /* gone */ }
	if (browser && browser.process())
		try {
			browser.process().kill('SIGKILL');
		} catch (_) { /* gone */ }
	if (!process.env.DISTRO_CONSOLE_KEEP)
		try {
			fs.rmSync(workDir, { recursive: true, force: true, maxRetries: 5 });
		} catch (_) { /* Chromium may still be writing its profile as it dies */ }
	else
		process.stderr.write(`console.js: kept ${workDir}\n`);
}
process.on('exit', cleanup);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'])
	process.on(sig, () => {
		process.stderr.write(`console.js: ${sig}\n`);
		process.exit(1);
	});

function dumpLogs() {
	for (const n of nodes) {
		let text;
		try {
			text = fs.readFileSync(n.log, 'utf8');
		} catch (_) {
			text = '(no log)';
		}
		process.stderr.write(`---- node ${n.i}, last 30 lines of ${n.log} ----\n` +
			text.split('\n').slice(-30).join('\n') + '\n');
	}
}

async function freePorts(count) {
	const servers = [];
	try {
		for (let k = 0; k < count; k++) {
			const s = net.createServer();
			await new Promise((resolve, reject) => {
				s.once('error', reject);
				s.listen(0, '127.0.0.1', resolve);
			});
			servers.push(s);
		}
		return servers.map(s => s.address().port);
	} finally {
		await Promise.all(servers.map(s => new Promise(r => s.close(r))));
	}
}

function startNode(n, clustered, auth) {
	const f = name => path.join(workDir, `node${n.i}.${name}`);
	const a = ['--bind', '127.0.0.1', '--port', '0', '--port-file', f('port'),
		'--http-bind', '127.0.0.1', '--http-port', '0', '--http-port-file', f('http-port'),
		'--nacos-port', '0', '--nacos-port-file', f('nacos-port'),
		'--workers', '2', '--log-level', 'info',
		// Nothing beats in this test: instances live as long as it runs.
		'--beat-timeout', '600000', '--delete-timeout', '600000'];
	if (auth) a.push('--auth-users', path.join(workDir, 'users'));
	if (clustered)
		a.push('--cluster-conf', path.join(workDir, 'cluster.conf'),
			'--cluster-secret-file', path.join(workDir, 'secret'),
			'--peer-port', String(n.peerPort),
			// Short timers, as tests/cluster/harness.c: a cold cluster is READY in ~1 s.
			'--peer-ping', '50', '--peer-suspect', '300', '--peer-down', '900',
			'--verify-interval', '200', '--startup-wait', '1000');
	n.portFile = f('nacos-port');
	n.httpPortFile = f('http-port');
	const fd = fs.openSync(n.log, 'a');
	n.proc = spawn('setpriv', ['--pdeathsig', 'KILL', args.distrod, ...a],
		{ stdio: ['ignore', fd, fd] });
	fs.closeSync(fd);
	n.proc.on('exit', (code, sig) => {
		n.exited = `exit ${code === null ? sig : code}`;
	});
}

function readPort(file) {
	try {
		const p = Number(fs.readFileSync(file, 'utf8').trim());
		return p > 0 ? p : 0;
	} catch (_) {
		return 0;
	}
}

// ---- HTTP straight to a node: the test's own view of the store ----

const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
let authQS = {}; // auth mode: the test's requests carry username and password

function request(port, method, reqPath, params = {}) {
	const q = new URLSearchParams({ ...params, ...authQS }).toString();
	return new Promise(resolve => {
		const req = http.request({ host: '127.0.0.1', port, method, agent, timeout: 5000,
			path: reqPath + (q ? `?${q}` : '') }, res => {
			let body = '';
			res.setEncoding('utf8');
			res.on('data', d => { body += d; });
			res.on('end', () => {
				let json;
				try {
					json = JSON.parse(body);
				} catch (_) { /* text */ }
				resolve({ status: res.statusCode, body, json, headers: res.headers });
			});
		});
		req.on('timeout', () => req.destroy(new Error('timeout')));
		req.on('error', err => resolve({ status: 0, body: String(err) }));
		req.end();
	});
}

async function ok(port, method, reqPath, params) {
	const r = await request(port, method, reqPath, params);
	if (r.status !== 200)
		fail(`${method} ${reqPath} ${JSON.stringify(params)}: ${r.status} ${r.body.slice(0, 300)}`);
	return r;
}

const NS = '/nacos/v1/ns';

function register(port, svc, inst) {
	return ok(port, 'POST', `${NS}/instance`, {
		namespaceId: svc.ns || 'public', groupName: svc.group, serviceName: svc.name,
		ip: inst.ip, port: inst.port, clusterName: inst.cluster || 'DEFAULT',
		weight: inst.weight || 1, healthy: inst.healthy === false ? 'false' : 'true',
		metadata: JSON.stringify(inst.metadata || {}),
	});
}

// The instance as a node's store has it (GET /instance: disabled ones too), or null.
async function instanceOf(port, svc, inst) {
	const r = await request(port, 'GET', `${NS}/instance`, {
		namespaceId: svc.ns || 'public', groupName: svc.group, serviceName: svc.name,
		ip: inst.ip, port: inst.port, clusterName: inst.cluster || 'DEFAULT',
	});
	if (r.status === 200 && r.json) return r.json;
	return null;
}

async function waitFor(what, timeoutMs, cond) {
	const end = Date.now() + timeoutMs;
	let last;
	for (;;) {
		for (const n of nodes)
			if (n.exited) fail(`node ${n.i} stopped (${n.exited}) while waiting for ${what}`);
		last = await cond();
		if (last === true) return;
		if (Date.now() >= end) break;
		await napMs(50);
	}
	fail(`timed out after ${timeoutMs} ms waiting for ${what}` +
		(last !== undefined && last !== false ? `; last seen: ${typeof last === 'string' ? last : JSON.stringify(last)}` : ''));
}

async function startNodes(count, auth) {
	const clustered = count > 1;
	const peers = clustered ? await freePorts(count) : [];
	for (let i = 0; i < count; i++)
		nodes.push({ i, peerPort: peers[i], log: path.join(workDir, `node${i}.log`) });
	if (clustered) {
		fs.writeFileSync(path.join(workDir, 'cluster.conf'),
			nodes.map(n => `127.0.0.1:${n.peerPort}\n`).join(''));
		fs.writeFileSync(path.join(workDir, 'secret'),
			require('crypto').randomBytes(32).toString('hex'), { mode: 0o600 });
	}
	if (auth) {
		const hash = execFileSync(args.distroctl, ['hash-password', '--cost', '4'],
			{ input: `${AUTH_PASSWORD}\n${AUTH_PASSWORD}\n`, encoding: 'utf8' }).trim();
		fs.writeFileSync(path.join(workDir, 'users'), `${AUTH_USER}:${hash}:admin\n`, { mode: 0o600 });
	}
	for (const n of nodes) startNode(n, clustered, auth);
	await waitFor('every node to write its Nacos and HTTP ports', START_MS, () => {
		for (const n of nodes) {
			n.nacosPort = readPort(n.portFile);
			n.adminPort = readPort(n.httpPortFile);
			if (!n.nacosPort || !n.adminPort) return `node ${n.i}: no port yet`;
		}
		return true;
	});
	if (clustered)
		await waitFor('every node READY with three members UP and READY (admin /cluster)', START_MS,
			async () => {
				for (const n of nodes) {
					const r = await request(n.adminPort, 'GET', '/cluster');
					const j = r.json;
					if (r.status !== 200 || !j || !j.ready || !Array.isArray(j.members) ||
						j.members.length !== 3 ||
						!j.members.every(m => m.health === 'UP' && m.ready && m.slots > 0))
						return `node ${n.i}: ${r.status} ${r.body.slice(0, 200)}`;
				}
				return true;
			});
	say(`${count} node(s) up: nacos ports ${nodes.map(n => n.nacosPort).join(', ')}`);
}

async function stopNodes() {
	for (const n of nodes) n.proc.kill('SIGTERM');
	const end = Date.now() + 10000;
	while (nodes.some(n => !n.exited) && Date.now() < end) await napMs(50);
	for (const n of nodes)
		if (n.exited !== 'exit 0') fail(`node ${n.i} stopped with ${n.exited || 'nothing'}, not exit 0`);
}

// ---- the browser ----

const pageErrors = [];

async function openBrowser() {
	const pkg = JSON.parse(fs.readFileSync(path.join(PUPPETEER, 'package.json'), 'utf8'));
	if (pkg.version !== PINNED) fail(`${PUPPETEER} is version ${pkg.version}, not ${PINNED}`);
	if (!fs.existsSync(args.chromium))
		fail(`no Chromium at ${args.chromium} (tools/deps installs Debian's chromium)`);
	const puppeteer = require(PUPPETEER);
	browser = await puppeteer.launch({
		executablePath: args.chromium,
		headless: true,
		userDataDir: path.join(workDir, 'chromium'),
		args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run',
			'--disable-extensions', '--lang=en-US'],
		defaultViewport: { width: 1280, height: 820, deviceScaleFactor: 1 },
		timeout: 60000,
	});
}

async function newPage() {
	const page = await browser.newPage();
	page.setDefaultTimeout(UI_MS);
	page.on('pageerror', e => pageErrors.push(`page error: ${e.message}`));
	page.on('console', m => {
		const loc = m.location() && m.location().url || '';
		// ERR_NETWORK_CHANGED: Chromium drops requests in flight when an interface
		// appears (another test's network namespace); the next poll asks again.
		if (m.type() === 'error' && !loc.endsWith('/favicon.ico') &&
			!m.text().includes('net::ERR_NETWORK_CHANGED'))
			pageErrors.push(`console error: ${m.text()} (${loc})`);
	});
	page.on('dialog', d => {
		pageErrors.push(`unexpected dialog: ${d.message()}`);
		d.dismiss();
	});
	return page;
}

function noPageErrors(step) {
	if (pageErrors.length) fail(`${step}: ${pageErrors.join('; ')}`);
}

// Waits until fn (run in the page with arg) returns true; what it returned otherwise.
async function pageWait(page, what, fn, arg) {
	const end = Date.now() + UI_MS;
	let last;
	for (;;) {
		last = await page.evaluate(fn, arg);
		if (last === true) return;
		if (Date.now() >= end) break;
		await napMs(50);
	}
	fail(`the page did not show ${what} within ${UI_MS} ms; it showed: ${JSON.stringify(last)}`);
}

async function setInput(page, sel, value) {
	await page.$eval(sel, (e, v) => {
		e.value = v;
		e.dispatchEvent(new Event('input', { bubbles: true }));
		e.dispatchEvent(new Event('change', { bubbles: true }));
	}, value);
}

// Clicks sel in the page itself: the query and the click cannot straddle a redraw.
async function clickIn(page, sel) {
	await pageWait(page, `${sel} to click`, q => {
		const e = document.querySelector(q);
		if (!e || e.disabled) return `no ${q}`;
		e.click();
		return true;
	}, sel);
}

async function shot(page, name) {
	if (!args.screenshots) return;
	fs.mkdirSync(args.screenshots, { recursive: true });
	await page.screenshot({ path: path.join(args.screenshots, `${name}.png`) });
	say(`screenshot ${name}.png written`);
}

// The services table as the page shows it.
function serviceRows() {
	return Array.from(document.querySelectorAll('#svc-rows tr.svc-row')).map(tr => ({
		name: tr.querySelector('td a').textContent,
		group: tr.children[1].textContent,
		clusters: tr.children[2].textContent,
		ip: tr.children[3].textContent,
		healthy: tr.children[4].textContent,
		subs: tr.children[5].textContent,
	}));
}

// ---- data ----

const ORDERS = { group: 'SHOP', name: 'orders' };
const ORDERS_INST = [
	{ ip: '192.0.2.11', port: 8080, cluster: 'east', weight: 1, metadata: { zone: 'a', version: '1.4.2' } },
	{ ip: '192.0.2.12', port: 8080, cluster: 'east', weight: 2, metadata: { zone: 'b' } },
	{ ip: '198.18.0.13', port: 9090, cluster: 'west', weight: 1, healthy: false, metadata: {} },
];
const HOSTILE_NAMES = [
	'<script>window.__pwned=1</script>',
	'"><img src=x onerror="window.__pwned=1">',
];
const HOSTILE_META = {
	'<img src=x onerror=window.__pwned=1>': '<script>window.__pwned=1</script>',
	'note': '"><svg onload=window.__pwned=1>',
};
const SMALL = [
	{ group: 'SHOP', name: 'payments', inst: [{ ip: '192.0.2.21', port: 7001, metadata: { tier: 'gold' } }, { ip: '192.0.2.22', port: 7001 }] },
	{ group: 'SHOP', name: 'cart', inst: [{ ip: '198.18.1.5', port: 80 }] },
	{ group: 'DEFAULT_GROUP', name: 'gateway', inst: [{ ip: '192.0.2.40', port: 443, cluster: 'edge' }, { ip: '192.0.2.41', port: 443, cluster: 'edge' }, { ip: '192.0.2.42', port: 443, cluster: 'core' }] },
];

async function registerBase(port) {
	for (const h of ORDERS_INST) await register(port, ORDERS, h);
	for (const s of SMALL)
		for (const h of s.inst) await register(port, s, h);
}

function bulkName(i) {
	return `svc-${String(i).padStart(4, '0')}`;
}

// ---- the steps ----

async function servicesStep(page, port) {
	say('step: the services list shows the right counts, subscribers included');
	// A subscriber of orders: a poll with udpPort (a loopback UDP socket of ours).
	const sock = dgram.createSocket('udp4');
	await new Promise(r => sock.bind(0, '127.0.0.1', r));
	sock.on('message', () => { /* pushes: not acked, not needed */ });
	await ok(port, 'GET', `${NS}/instance/list`, { serviceName: `${ORDERS.group}@@${ORDERS.name}`,
		udpPort: sock.address().port, healthyOnly: 'false' });
	await page.goto(`http://127.0.0.1:${port}/nacos/`, { waitUntil: 'load' });
	await pageWait(page, 'the services view', () => document.body.dataset.view === 'services');
	await setInput(page, '#f-group', 'SHOP');
	await pageWait(page, 'orders with 3 instances, 2 healthy, 1 subscriber, 2 clusters', () => {
		const all = Array.from(document.querySelectorAll('#svc-rows tr.svc-row'));
		if (all.some(tr => tr.children[1].textContent !== 'SHOP')) return 'not filtered yet';
		const r = all.find(tr => tr.querySelector('td a').textContent === 'orders');
		if (!r) return document.querySelector('#svc-rows').textContent;
		const t = Array.from(r.children).map(td => td.textContent);
		return t[1] === 'SHOP' && t[2] === '2' && t[3] === '3' && t[4] === '2' && t[5] === '1' ? true : t;
	});
	const rows = await page.evaluate(serviceRows);
	const names = rows.map(r => r.name).sort();
	if (JSON.stringify(names) !== JSON.stringify(['cart', 'orders', 'payments']))
		fail(`group SHOP lists ${JSON.stringify(names)}`);
	const pay = rows.find(r => r.name === 'payments');
	if (pay.ip !== '2' || pay.healthy !== '2' || pay.subs !== '0') fail(`payments row: ${JSON.stringify(pay)}`);
	// A live update: a new instance shows without a reload.
	await register(port, { group: 'SHOP', name: 'cart' }, { ip: '198.18.1.6', port: 80 });
	await pageWait(page, 'cart with 2 instances after a registration (live update)', () => {
		const r = Array.from(document.querySelectorAll('#svc-rows tr.svc-row'))
			.find(tr => tr.querySelector('td a').textContent === 'cart');
		return r && r.children[3].textContent === '2' ? true : r && r.children[3].textContent;
	});
	// A service without instances: listed with 0, hidden by "hide services without instances".
	await ok(port, 'POST', `${NS}/service`, { serviceName: 'idle', groupName: 'SHOP' });
	await pageWait(page, 'the empty service idle with 0 instances', () => {
		const r = Array.from(document.querySelectorAll('#svc-rows tr.svc-row'))
			.find(tr => tr.querySelector('td a').textContent === 'idle');
		return r && r.children[3].textContent === '0' ? true : r && r.children[3].textContent;
	});
	await page.click('#f-hide-empty');
	await pageWait(page, 'idle hidden, orders still listed', () => {
		const names = Array.from(document.querySelectorAll('#svc-rows tr.svc-row td a')).map(a => a.textContent);
		return !names.includes('idle') && names.includes('orders') ? true : names;
	});
	await page.click('#f-hide-empty');
	await pageWait(page, 'idle listed again', () =>
		Array.from(document.querySelectorAll('#svc-rows tr.svc-row td a')).some(a => a.textContent === 'idle'));
	sock.close();
	noPageErrors('services');
}

async function pagingStep(page, port) {
	say(`step: paging and search over ${BULK} services`);
	const jobs = [];
	for (let i = 0; i < BULK; i++) {
		jobs.push(register(port, { group: 'BULK', name: bulkName(i) }, { ip: '198.18.2.1', port: 1000 + (i % 50000) }));
		if (jobs.length === 32) await Promise.all(jobs.splice(0));
	}
	await Promise.all(jobs);
	await setInput(page, '#f-name', '');
	await setInput(page, '#f-group', 'BULK');
	await pageWait(page, `page 1 of ${BULK / 20}`, n => document.querySelector('#pg-info').textContent ===
		`Page 1 of ${n / 20} · ${n} services` || document.querySelector('#pg-info').textContent, BULK);
	await page.click('#pg-last');
	await pageWait(page, 'the last page', n => {
		const info = document.querySelector('#pg-info').textContent;
		return info === `Page ${n / 20} of ${n / 20} · ${n} services` &&
			document.querySelectorAll('#svc-rows tr.svc-row').length === 20 &&
			document.querySelector('#pg-next').disabled ? true : info;
	}, BULK);
	// Every service once over all pages: walk them through the page's own pager, 100 per page.
	await page.select('#f-size', '100');
	await pageWait(page, 'page 1 of 20 at 100 per page', n =>
		document.querySelector('#pg-info').textContent === `Page 1 of ${n / 100} · ${n} services` &&
		document.querySelectorAll('#svc-rows tr.svc-row').length === 100 || document.querySelector('#pg-info').textContent, BULK);
	const seen = new Set();
	for (let p = 1; p <= BULK / 100; p++) {
		if (p > 1) {
			await page.click('#pg-next');
			await pageWait(page, `page ${p}`, ([pp, n]) =>
				document.querySelector('#pg-info').textContent === `Page ${pp} of ${n / 100} · ${n} services` &&
				document.querySelectorAll('#svc-rows tr.svc-row').length === 100 ||
				document.querySelector('#pg-info').textContent, [p, BULK]);
		}
		for (const r of await page.evaluate(serviceRows)) {
			if (seen.has(r.name)) fail(`${r.name} on two pages`);
			if (r.group !== 'BULK' || r.ip !== '1' || r.healthy !== '1') fail(`row ${JSON.stringify(r)}`);
			seen.add(r.name);
		}
	}
	for (let i = 0; i < BULK; i++)
		if (!seen.has(bulkName(i))) fail(`${bulkName(i)} on no page`);
	// Search: a substring of the name, reset to page 1.
	await setInput(page, '#f-name', 'svc-01');
	await pageWait(page, 'the 100 services whose name has svc-01', () => {
		const info = document.querySelector('#pg-info').textContent;
		const rows = Array.from(document.querySelectorAll('#svc-rows tr.svc-row a')).map(a => a.textContent);
		return info === 'Page 1 of 1 · 100 services' && rows.length === 100 &&
			rows.every(n => /^svc-01\d\d$/.test(n)) ? true : info;
	});
	await setInput(page, '#f-name', 'svc-1999');
	await pageWait(page, 'exactly svc-1999', () => {
		const rows = Array.from(document.querySelectorAll('#svc-rows tr.svc-row a')).map(a => a.textContent);
		return rows.length === 1 && rows[0] === 'svc-1999' ? true : rows.join(' ');
	});
	await setInput(page, '#f-name', 'no-such-service');
	await pageWait(page, 'no match', () => document.querySelector('#pg-info').textContent === 'Page 1 of 1 · 0 services' &&
		document.querySelector('#svc-rows').textContent.includes('No services match'));
	await page.select('#f-size', '20');
	await setInput(page, '#f-name', '');
	noPageErrors('paging');
}

async function hostileStep(page, port) {
	say('step: a hostile service name and hostile metadata render as text');
	for (const name of HOSTILE_NAMES)
		await register(port, { group: 'EVIL', name }, { ip: '192.0.2.66', port: 6666, metadata: HOSTILE_META });
	await setInput(page, '#f-name', '');
	await setInput(page, '#f-group', 'EVIL');
	await pageWait(page, 'both hostile names, as text', names => {
		const links = Array.from(document.querySelectorAll('#svc-rows tr.svc-row td a')).map(a => a.textContent).sort();
		return JSON.stringify(links) === JSON.stringify(names.slice().sort()) ? true : links;
	}, HOSTILE_NAMES);
	const inj = await page.evaluate(() => ({
		pwned: window.__pwned,
		imgs: document.querySelectorAll('main img, main svg').length,
		scripts: Array.from(document.scripts).map(s => s.src),
	}));
	if (inj.pwned !== undefined || inj.imgs !== 0 || inj.scripts.length !== 1)
		fail(`injected markup ran or was parsed: ${JSON.stringify(inj)}`);
	await shot(page, 'services-hostile');
	// The detail of the second one: name and metadata as text.
	await page.evaluate(name => {
		Array.from(document.querySelectorAll('#svc-rows tr.svc-row td a')).find(a => a.textContent === name).click();
	}, HOSTILE_NAMES[1]);
	await pageWait(page, 'the hostile service\'s detail with its metadata as text', ([name, meta]) => {
		const title = document.querySelector('#svc-title').textContent;
		const items = Array.from(document.querySelectorAll('#inst-rows .meta-item')).map(li => li.textContent).sort();
		const want = Object.entries(meta).map(([k, v]) => `${k}=${v}`).sort();
		return document.body.dataset.view === 'service' && title === name &&
			JSON.stringify(items) === JSON.stringify(want) ? true : { title, items };
	}, [HOSTILE_NAMES[1], HOSTILE_META]);
	const after = await page.evaluate(() => ({ pwned: window.__pwned, imgs: document.querySelectorAll('main img, main svg').length }));
	if (after.pwned !== undefined || after.imgs !== 0) fail(`injected markup ran in the detail: ${JSON.stringify(after)}`);
	noPageErrors('hostile');
}

// Opens a service's detail from the services list (by clicking its link).
async function openService(page, port, svc) {
	await page.goto(`http://127.0.0.1:${port}/nacos/#/services`, { waitUntil: 'load' });
	await setInput(page, '#f-group', svc.group);
	await setInput(page, '#f-name', svc.name);
	await pageWait(page, `${svc.name} in the list`, name =>
		Array.from(document.querySelectorAll('#svc-rows tr.svc-row td a')).some(a => a.textContent === name), svc.name);
	await page.evaluate(name => {
		Array.from(document.querySelectorAll('#svc-rows tr.svc-row td a')).find(a => a.textContent === name).click();
	}, svc.name);
	await pageWait(page, `${svc.name}'s instances`, name =>
		document.body.dataset.view === 'service' && document.querySelector('#svc-title').textContent === name &&
		document.querySelectorAll('#inst-rows tr.inst-row').length > 0, svc.name);
}

function rowSel(h) {
	return `#inst-rows tr.inst-row[data-ip="${h.ip}"][data-port="${h.port}"]`;
}

async function detailStep(page, port, checkPorts) {
	say('step: the service detail shows every instance; an edit and a deregistration clicked in the page reach the store');
	await openService(page, port, ORDERS);
	await pageWait(page, 'three instances with their fields', insts => {
		const rows = Array.from(document.querySelectorAll('#inst-rows tr.inst-row'));
		if (rows.length !== 3) return rows.length;
		for (const h of insts) {
			const tr = rows.find(r => r.dataset.ip === h.ip && r.dataset.port === String(h.port));
			if (!tr) return `no row ${h.ip}:${h.port}`;
			const t = Array.from(tr.children).map(td => td.textContent);
			const meta = Array.from(tr.querySelectorAll('.meta-item')).map(li => li.textContent).sort();
			const want = Object.entries(h.metadata).map(([k, v]) => `${k}=${v}`).sort();
			if (t[2] !== h.cluster || Number(t[3]) !== h.weight || t[4] !== (h.healthy === false ? 'no' : 'yes') ||
				t[5] !== 'yes' || t[6] !== 'yes' || JSON.stringify(meta) !== JSON.stringify(want) || !/s ago$/.test(t[8]))
				return t;
		}
		return true;
	}, ORDERS_INST);
	if (args.mode === 'standalone') await shot(page, 'service');
	// Edit: weight 5, disabled, new metadata.
	const e = ORDERS_INST[0];
	await clickIn(page, `${rowSel(e)} .i-edit`);
	await page.waitForSelector(`${rowSel(e)} .e-weight`);
	await page.$eval(`${rowSel(e)} .e-weight`, el => { el.value = '5'; });
	await page.$eval(`${rowSel(e)} .e-enabled`, el => { el.checked = false; });
	await page.$eval(`${rowSel(e)} .e-meta`, el => { el.value = '{"zone":"z9","owner":"team <ops> & \\"sre\\""}'; });
	await clickIn(page, `${rowSel(e)} .e-save`);
	for (const p of checkPorts)
		await waitFor(`node on port ${p} to hold the edit (weight 5, disabled, new metadata)`, UI_MS, async () => {
			const got = await instanceOf(p, ORDERS, e);
			return got && got.weight === 5 && got.enabled === false &&
				util.isDeepStrictEqual(got.metadata, { zone: 'z9', owner: 'team <ops> & "sre"' }) ? true : got;
		});
	await pageWait(page, 'the edited row', sel => {
		const tr = document.querySelector(sel);
		if (!tr) return 'no row';
		const t = Array.from(tr.children).map(td => td.textContent);
		return t[3] === '5' && t[5] === 'no' && tr.querySelector('.i-edit') !== null ? true : t;
	}, rowSel(e));
	// Deregister: two clicks (the button, then its confirmation).
	const d = ORDERS_INST[1];
	await clickIn(page, `${rowSel(d)} .i-deregister`);
	await clickIn(page, `${rowSel(d)} .i-confirm`);
	for (const p of checkPorts)
		await waitFor(`node on port ${p} to have dropped ${d.ip}:${d.port}`, UI_MS, async () =>
			(await instanceOf(p, ORDERS, d)) === null);
	await pageWait(page, 'two instances left', () => document.querySelectorAll('#inst-rows tr.inst-row').length === 2);
	const untouched = await instanceOf(checkPorts[0], ORDERS, ORDERS_INST[2]);
	if (!untouched || untouched.weight !== 1) fail(`the third instance changed: ${JSON.stringify(untouched)}`);
	noPageErrors('detail');
}

async function clusterStep(page, port) {
	say('step: the cluster view shows three members, UP and READY, with their slots');
	await page.goto(`http://127.0.0.1:${port}/nacos/#/cluster`, { waitUntil: 'load' });
	await pageWait(page, 'three members UP and READY owning slots', () => {
		const rows = Array.from(document.querySelectorAll('#cl-rows tr.member-row'));
		const ms = rows.map(tr => ({
			health: tr.querySelector('.m-health').textContent,
			ready: tr.querySelector('.m-ready').textContent,
			slots: Number(tr.querySelector('.m-slots').textContent),
		}));
		return ms.length === 3 && ms.every(m => m.health === 'UP' && m.ready === 'yes' && m.slots > 0) &&
			document.querySelector('#cl-summary').textContent.includes('READY') &&
			document.querySelectorAll('#cl-stat-rows tr.stat-row').length > 5 ? true : ms;
	});
	const slots = await page.evaluate(() => Array.from(document.querySelectorAll('#cl-rows .m-slots')).map(td => Number(td.textContent)));
	const api = await ok(port, 'GET', '/cluster');
	const want = api.json.members.map(m => m.slots);
	if (JSON.stringify(slots) !== JSON.stringify(want)) fail(`slots shown ${slots}, /cluster says ${want}`);
	// The replication lag: the page's count of records applied here is /metrics's.
	await waitFor('the page\'s replication-lag count to equal /metrics\'s', UI_MS, async () => {
		const m = /^distrod_replication_lag_seconds_count (\d+)$/m.exec((await ok(port, 'GET', '/metrics')).body);
		if (!m || Number(m[1]) === 0) return `metrics: ${m && m[1]}`;
		const shown = await page.evaluate(() => {
			const r = document.querySelector('#cl-lag-rows tr.lag-row[data-window="since start"] .lag-count');
			return r ? r.textContent : null;
		});
		return shown === m[1] ? true : `page ${shown}, /metrics ${m[1]}`;
	});
	// Live: the counters move without a reload (per-second rates appear on the second poll).
	await pageWait(page, 'a per-second rate (a second poll)', () =>
		Array.from(document.querySelectorAll('#cl-stat-rows tr.stat-row td:last-child')).some(td => td.textContent !== ''));
	await shot(page, 'cluster');
	noPageErrors('cluster');
}

async function authStep(page, port) {
	say('step: with auth on, the login page appears; without a login the server refuses; after a login it works');
	await page.goto(`http://127.0.0.1:${port}/nacos/`, { waitUntil: 'load' });
	await pageWait(page, 'the login form', () =>
		document.body.dataset.view === 'login' && !document.querySelector('#view-login').hidden &&
		document.querySelector('#svc-rows').children.length === 0);
	await shot(page, 'login');
	// A wrong password.
	await page.type('#login-user', AUTH_USER);
	await page.type('#login-pass', 'wrong password');
	await page.click('#login-submit');
	await pageWait(page, 'the login refused', () => {
		const e = document.querySelector('#login-error');
		return !e.hidden && e.textContent.includes('403') && e.textContent.includes('unknown user!') ? true : e.textContent;
	});
	// The right one.
	await page.$eval('#login-pass', el => { el.value = ''; });
	await page.type('#login-pass', AUTH_PASSWORD);
	await page.click('#login-submit');
	await pageWait(page, 'the services after the login', () =>
		document.body.dataset.view === 'services' && document.querySelector('#who-name').textContent === 'console' &&
		document.querySelectorAll('#svc-rows tr.svc-row').length > 0);
	const tok = await page.evaluate(() => sessionStorage.getItem('distrod.accessToken'));
	if (!tok) fail('no token in sessionStorage after the login');
	await openService(page, port, ORDERS);
	// The login goes (another tab logged out, the token expired): the deregistration is refused.
	const d = ORDERS_INST[1];
	await clickIn(page, `${rowSel(d)} .i-deregister`);
	await page.evaluate(() => sessionStorage.removeItem('distrod.accessToken'));
	await clickIn(page, `${rowSel(d)} .i-confirm`);
	await pageWait(page, 'the server\'s 403 shown', () => {
		const b = document.querySelector('#banner');
		return !b.hidden && b.textContent.includes('refused by the server (403)') &&
			b.textContent.includes('user not found!') ? true : b.textContent;
	});
	if ((await instanceOf(port, ORDERS, d)) === null) fail('the refused deregistration happened');
	// Keep: the view reloads, the read is refused too, the login form comes back.
	await clickIn(page, `${rowSel(d)} .i-cancel`);
	await pageWait(page, 'the login form again', () => document.body.dataset.view === 'login');
	await page.$eval('#login-pass', el => { el.value = ''; });
	await page.type('#login-pass', AUTH_PASSWORD);
	await page.click('#login-submit');
	await pageWait(page, 'the service again after the login', sel =>
		document.body.dataset.view === 'service' && document.querySelector(sel) !== null, rowSel(d));
	await clickIn(page, `${rowSel(d)} .i-deregister`);
	await clickIn(page, `${rowSel(d)} .i-confirm`);
	await waitFor(`${d.ip}:${d.port} deregistered after the login`, UI_MS, async () =>
		(await instanceOf(port, ORDERS, d)) === null);
	// The log-out button forgets the token: the login form again.
	await page.click('#logout');
	await pageWait(page, 'the login form after logging out', () => document.body.dataset.view === 'login' &&
		sessionStorage.getItem('distrod.accessToken') === null);
	// Ignore the 403s the page logged on purpose; anything else is an error.
	const rest = pageErrors.filter(e => !/status of 403/.test(e));
	pageErrors.length = 0;
	pageErrors.push(...rest);
	noPageErrors('auth');
}

async function headersStep(port) {
	say('step: the console files: types, cache validators, security headers, /nacos redirect');
	const idx = await ok(port, 'GET', '/nacos/');
	const root = await ok(port, 'GET', '/');
	if (idx.body !== root.body || !idx.body.startsWith('<!doctype html>')) fail('/ and /nacos/ differ or are not the page');
	const want = {
		'/nacos/': 'text/html; charset=utf-8',
		'/nacos/console/console.css': 'text/css; charset=utf-8',
		'/nacos/console/console.js': 'text/javascript; charset=utf-8',
	};
	for (const [p, ct] of Object.entries(want)) {
		const r = await ok(port, 'GET', p);
		const h = r.headers;
		if (h['content-type'] !== ct) fail(`${p}: Content-Type ${h['content-type']}`);
		if (!/^default-src 'self'/.test(h['content-security-policy'] || '')) fail(`${p}: CSP ${h['content-security-policy']}`);
		if (h['x-content-type-options'] !== 'nosniff' || h['x-frame-options'] !== 'DENY' || h['cache-control'] !== 'no-cache')
			fail(`${p}: headers ${JSON.stringify(h)}`);
		const again = await new Promise(resolve => {
			http.get({ host: '127.0.0.1', port, path: p, agent, headers: { 'If-None-Match': h.etag } },
				res => { res.resume(); res.on('end', () => resolve(res.statusCode)); });
		});
		if (again !== 304) fail(`${p}: If-None-Match ${h.etag} answered ${again}, not 304`);
	}
	const red = await request(port, 'GET', '/nacos');
	if (red.status !== 301 || red.headers.location !== '/nacos/') fail(`/nacos: ${red.status} ${red.headers.location}`);
}

// ---- main ----

async function main() {
	if (args.mode === 'standalone') {
		await startNodes(1, false);
		const port = nodes[0].nacosPort;
		await headersStep(port);
		await registerBase(port);
		await openBrowser();
		const page = await newPage();
		await servicesStep(page, port);
		await setInput(page, '#f-group', '');
		await pageWait(page, 'every group', () => document.querySelectorAll('#svc-rows tr.svc-row').length >= 4);
		await shot(page, 'services');
		await pagingStep(page, port);
		await hostileStep(page, port);
		await detailStep(page, port, [port]);
	} else if (args.mode === 'cluster') {
		await startNodes(3, false);
		await registerBase(nodes[0].nacosPort);
		await openBrowser();
		const page = await newPage();
		await clusterStep(page, nodes[1].nacosPort);
		// Registered through node 0, listed and edited through node 1, checked on all three.
		await detailStep(page, nodes[1].nacosPort, nodes.map(n => n.nacosPort));
	} else {
		await startNodes(1, true);
		authQS = { username: AUTH_USER, password: AUTH_PASSWORD };
		const port = nodes[0].nacosPort;
		// Without credentials the API refuses; the console's files are served.
		const bare = await new Promise(resolve => http.get({ host: '127.0.0.1', port, path: `${NS}/catalog/services`, agent },
			res => { res.resume(); res.on('end', () => resolve(res.statusCode)); }));
		if (bare !== 403) fail(`catalog without credentials answered ${bare}, not 403`);
		const page0 = await new Promise(resolve => http.get({ host: '127.0.0.1', port, path: '/nacos/', agent },
			res => { res.resume(); res.on('end', () => resolve(res.statusCode)); }));
		if (page0 !== 200) fail(`/nacos/ without credentials answered ${page0}, not 200`);
		await registerBase(port);
		await openBrowser();
		const page = await newPage();
		await authStep(page, port);
	}
	await browser.close();
	browser = null;
	say('step: SIGTERM every node, each exits 0');
	await stopNodes();
	say('passed');
}

main().then(() => process.exit(0), err => {
	process.stderr.write(`\nFAILED (${args.mode}): ${err instanceof Failure ? err.message : err.stack}\n`);
	if (pageErrors.length) process.stderr.write(`page errors: ${pageErrors.join('\n')}\n`);
	dumpLogs();
	process.exit(1);
});
