'use strict';
/*
 * e2e.js - the real Nacos 2.x gRPC client against real distrod processes:
 * nacos-sdk-rust 0.8.0 as npm ships it (nacos-sdk-rust-binding-node@0.8.0,
 * a prebuilt binary of the official Rust SDK), with a Nacos 1.x HTTP client
 * (raw HTTP to /nacos/v1/ns) beside it, asserted step by step.
 *
 *   node e2e.js --distrod BIN --modules DIR [--nodes 1|3]
 *
 * DIR is where `npm install --prefix DIR nacos-sdk-rust-binding-node@0.8.0`
 * put the package (tests/nacos/npm-install.sh).
 *
 * Exit status: 0 passed; 1 failed (with the step and what was seen); 77
 * skipped, only when BIN's --help has no --grpc-port, i.e. a distrod built
 * before the gRPC port existed. Anything else that is missing fails.
 *
 * Ports. The SDK has no gRPC-port option: it always dials the Nacos port
 * of its serverAddr + 1000 (nacos-sdk-rust src/common/remote/grpc/tonic.rs
 * :312-314). So for each node the script picks a free Nacos port P whose
 * P + 1000 is free too, holds both until every port is chosen, and passes
 * --nacos-port P --grpc-port P+1000 explicitly (never a default port).
 *
 * Clients. Each SDK client runs in a child process (sdk-client.js, whose
 * comment says why) started under `setpriv --pdeathsig KILL`, like every
 * distrod here, so nothing outlives the script. Two SDK clients, A and B,
 * and the HTTP client H. With --nodes 3 each talks to a different node
 * (A to node 0, B to node 1, H to node 2), so every change A makes must
 * cross the cluster to reach B and H, and the other way round; with one
 * node all three share it.
 *
 * Pushes, not polls. The SDK's listener also fires from its own poll
 * (ServiceQueryRequest 1 s after subscribe, then every cacheMillis x 6 =
 * 60 s with the 10000 ms distrod and Nacos send), so every change here is
 * made at least 1.5 s after the listener's subscribe and must reach the
 * listener within PUSH_WAIT_MS (5 s): only a NotifySubscriberRequest on
 * the client's bi-stream gets there that fast. The client drops a push
 * it cannot decode without a word to the caller (no ack either), so a
 * wrong JSON field fails here as a timeout naming the step.
 *
 * Restart (the redo). A registers with registerInstance and
 * batchRegisterInstance and subscribes; then A's node is stopped and
 * started again on the same ports. The client reconnects (new connection
 * id) and replays its registrations and subscriptions (nacos-sdk-rust
 * src/naming/redo/). distrod keeps no state across a restart, so with one
 * node A's instances come back only by that replay; with three, the
 * script first waits for them to leave the survivors (nothing renews them
 * once their connection's node is gone: they go when it closes the
 * connection, or at the latest after the delete timeout) and for B to be
 * pushed that, so there too only the replay brings them back. The
 * replayed subscription is checked by a push that must reach A after the
 * restart. Last, every node must have had each of its pushes acknowledged
 * (its admin /metrics): the SDK acks only pushes it could decode.
 *
 * Every wait is bounded and polls a condition; nothing sleeps as an
 * assertion. Instance addresses are documentation ranges (192.0.2.0/24,
 * 198.18.0.0/15): nothing connects to them. At the end every node gets
 * SIGTERM and must exit 0 (ASan's leak check runs there).
 */

const { spawn, execFileSync } = require('child_process');
const fs = require('fs');
const http = require('http');
const net = require('net');
const os = require('os');
const path = require('path');
const util = require('util');

// ---- arguments ----

function parseArgs(argv) {
	const a = { nodes: 1 };
	for (let i = 0; i < argv.length; i += 2) {
		const k = argv[i];
		const v = argv[i + 1];
		if (k === '--distrod') a.distrod = v;
		else if (k === '--modules') a.modules = v;
		else if (k === '--nodes') a.nodes = Number(v);
		else throw new Error(`unknown argument ${k}`);
	}
	if (!a.distrod || !a.modules || !(a.nodes === 1 || a.nodes === 3))
		throw new Error('usage: e2e.js --distrod BIN --modules DIR [--nodes 1|3]');
	return a;
}

const args = parseArgs(process.argv.slice(2));
const PKG_NAME = 'nacos-sdk-rust-binding-node';
const PINNED = '0.8.0';
const PKG = path.resolve(args.modules, 'node_modules', PKG_NAME);
const SKIP = 77;

const GRPC_OFFSET = 1000; // what the SDK adds to the Nacos port
const PUSH_WAIT_MS = 5000; // a change at a listener: pushes take ms, polls 60 s
const SUBSCRIBE_SETTLE_MS = 1500; // past the SDK's first poll, 1 s after subscribe
const START_MS = 20000; // a node (ASan build) listens and is READY within this
const CLIENT_START_MS = 20000; // the SDK constructor connects within this
const CALL_MS = 10000; // one SDK call answers within this
const REDO_MS = 45000; // reconnect (back-off up to 8 s + 5 s health tick) and replay (3 s)
// The HTTP client beats its instances every BEAT_INTERVAL_MS, as a 1.x
// client does. The short delete timeout is what removes A's instances from
// the survivors when A's node dies in the cluster (step 9).
const BEAT_INTERVAL_MS = 1000;
const BEAT_TIMEOUT_MS = 4000;
const DELETE_TIMEOUT_MS = 8000;

const t0 = Date.now();
function stamp() {
	return `+${((Date.now() - t0) / 1000).toFixed(3)}s`;
}
function stamp0(t) {
	return `+${((t - t0) / 1000).toFixed(3)}s`;
}
function say(...a) {
	process.stdout.write(`${stamp()} ${util.format(...a)}\n`);
}

class Failure extends Error {}
function fail(msg) {
	throw new Failure(msg);
}
function napMs(ms) {
	return new Promise(r => setTimeout(r, ms));
}

// ---- processes ----

const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'distro-nacos2-'));
const nodes = []; // {i, proc, nacosPort, grpcPort, adminPort, peerPort, log, exited}
const clients = []; // SdkClient

function alive(proc) {
	return proc && proc.exitCode === null && proc.signalCode === null;
}

function killAll() {
	for (const p of [...clients.map(c => c.proc), ...nodes.map(n => n.proc)]) {
		if (alive(p)) {
			try {
				process.kill(p.pid, 'SIGKILL');
			} catch (_) {
				/* already gone */
			}
		}
	}
}

process.on('exit', () => {
	killAll();
	if (process.env.DISTRO_NACOS_KEEP) {
		process.stderr.write(`e2e: kept ${workDir}\n`);
		return;
	}
	try {
		fs.rmSync(workDir, { recursive: true, force: true });
	} catch (_) {
		/* best effort */
	}
});
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'])
	process.on(sig, () => {
		process.stderr.write(`e2e: ${sig}\n`);
		process.exit(1);
	});

function tail(file, lines) {
	try {
		return fs.readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
	} catch (_) {
		return '(no log)';
	}
}

function dumpLogs() {
	for (const c of clients)
		process.stderr.write(`---- SDK client ${c.tag} (${c.serverAddr}), last 30 lines of ` +
			`${c.log} ----\n${tail(c.log, 30)}\n`);
	for (const n of nodes)
		process.stderr.write(`---- node ${n.i} (nacos ${n.nacosPort}, grpc ${n.grpcPort}, admin ` +
			`${n.adminPort}, peer ${n.peerPort}), last 40 lines of ${n.log} ----\n` +
			`${tail(n.log, 40)}\n`);
}

// distrod's flags, from its --help.
let FLAGS = null;
function helpFlags() {
	if (FLAGS === null) {
		const help = execFileSync(args.distrod, ['--help'], { encoding: 'utf8' });
		FLAGS = new Set(help.match(/--[a-z][a-z0-9-]*/g) || []);
	}
	return FLAGS;
}
function flag(...names) {
	for (const n of names)
		if (helpFlags().has(n)) return n;
	throw new Failure(`${args.distrod} has none of the flags ${names.join(', ')} (see its --help)`);
}

function listen(port) {
	return new Promise(resolve => {
		const s = net.createServer();
		s.once('error', () => resolve(null));
		s.listen(port, '127.0.0.1', () => resolve(s));
	});
}

/*
 * Free loopback ports for every node: a Nacos port P with P + 1000 free
 * too, an admin port and a peer port; all held until every one is chosen.
 */
async function pickPorts(count) {
	const held = [];
	try {
		const out = [];
		for (let i = 0; i < count; i++) {
			let pair = null;
			for (let tries = 0; !pair && tries < 200; tries++) {
				const s = await listen(0);
				if (!s) continue;
				held.push(s);
				const p = s.address().port;
				if (p + GRPC_OFFSET > 65535) continue;
				const g = await listen(p + GRPC_OFFSET);
				if (!g) continue; // P + 1000 taken: keep P held (not reused), try another
				held.push(g);
				pair = [p, p + GRPC_OFFSET];
			}
			if (!pair) fail('found no free port P with P + 1000 free too in 200 tries');
			const a = await listen(0);
			const b = await listen(0);
			held.push(a, b);
			out.push({ nacosPort: pair[0], grpcPort: pair[1], adminPort: a.address().port,
				peerPort: b.address().port });
		}
		return out;
	} finally {
		await Promise.all(held.map(s => new Promise(r => s.close(r))));
	}
}

function nodeArgs(n, clustered) {
	const a = [
		'--bind', '127.0.0.1', '--port', '0',
		flag('--admin-bind', '--http-bind'), '127.0.0.1',
		flag('--admin-port', '--http-port'), String(n.adminPort),
		flag('--nacos-port'), String(n.nacosPort),
		flag('--grpc-port'), String(n.grpcPort),
		'--workers', '2', '--log-level', 'info',
		'--beat-interval', String(BEAT_INTERVAL_MS),
		'--beat-timeout', String(BEAT_TIMEOUT_MS),
		'--delete-timeout', String(DELETE_TIMEOUT_MS),
	];
	if (helpFlags().has('--nacos-bind')) a.push('--nacos-bind', '127.0.0.1');
	if (helpFlags().has('--grpc-bind')) a.push('--grpc-bind', '127.0.0.1');
	// The node renews its gRPC clients' instances at their owners more often
	// than the beat timeout (it refuses a --grpc-renew that is not).
	if (helpFlags().has('--grpc-renew')) a.push('--grpc-renew', String(BEAT_INTERVAL_MS));
	if (clustered) {
		a.push('--cluster-conf', path.join(workDir, 'cluster.conf'),
			'--cluster-secret-file', path.join(workDir, 'secret'),
			'--peer-port', String(n.peerPort),
			// Short timers, as tests/cluster/harness.c: a cold cluster is READY in ~1 s.
			'--peer-ping', '50', '--peer-suspect', '300', '--peer-down', '900',
			'--verify-interval', '200', '--startup-wait', '1000');
	}
	return a;
}

function startNode(n, clustered) {
	const fd = fs.openSync(n.log, 'a');
	fs.writeSync(fd, `=== e2e.js ${stamp()}: start node ${n.i} (nacos ${n.nacosPort}, grpc ` +
		`${n.grpcPort}, admin ${n.adminPort}, peer ${n.peerPort})\n`);
	n.exited = null;
	n.down = false;
	n.proc = spawn('setpriv', ['--pdeathsig', 'KILL', args.distrod, ...nodeArgs(n, clustered)], {
		stdio: ['ignore', fd, fd],
	});
	fs.closeSync(fd);
	n.proc.on('exit', (code, sig) => {
		n.exited = `exit ${code === null ? sig : code}`;
	});
}

// ---- waiting ----

// Polls cond (may be async; true, or false / a string saying what it saw)
// every 25 ms until true, at most timeoutMs. Bounded. A node that stops
// (unless it may) or an SDK client process that dies fails at once.
let nodesMayStop = false;
let clientsMayStop = false;
async function waitFor(what, timeoutMs, cond) {
	const end = Date.now() + timeoutMs;
	let last;
	for (;;) {
		if (!nodesMayStop)
			for (const n of nodes)
				if (n.exited && !n.down) fail(`node ${n.i} stopped (${n.exited}) while waiting for ${what}`);
		for (const c of clients)
			if (c.exited && !clientsMayStop) fail(`SDK client ${c.tag} died (${c.exited}) while waiting for ${what}`);
		if (beatProblem) fail(`${beatProblem} (while waiting for ${what})`);
		last = await cond();
		if (last === true) return;
		if (Date.now() >= end) break;
		await napMs(25);
	}
	fail(`timed out after ${timeoutMs} ms waiting for ${what}` +
		(typeof last === 'string' ? `; last seen: ${last}` : ''));
}

// ---- the HTTP (Nacos 1.x API) client ----

function httpRequest(port, method, reqPath, timeoutMs = 3000) {
	return new Promise(resolve => {
		const req = http.request({ host: '127.0.0.1', port, method, path: reqPath, agent: false,
			timeout: timeoutMs }, res => {
			let body = '';
			res.setEncoding('utf8');
			res.on('data', d => { body += d; });
			res.on('end', () => resolve({ status: res.statusCode, body }));
			res.on('error', err => resolve({ status: 0, body: String(err) }));
		});
		req.on('timeout', () => req.destroy(new Error('timeout')));
		req.on('error', err => resolve({ status: 0, body: String(err) }));
		req.end();
	});
}

function parseJSON(text) {
	try {
		return JSON.parse(text);
	} catch (_) {
		return undefined;
	}
}

const NAMESPACE = 'public';
const GROUP = 'E2E2_GROUP';

function instanceQuery(service, inst) {
	return new URLSearchParams({ serviceName: service, groupName: GROUP, namespaceId: NAMESPACE,
		ip: inst.ip, port: String(inst.port), weight: String(inst.weight),
		ephemeral: 'true', metadata: JSON.stringify(inst.metadata) });
}

// The HTTP client's instances, beaten every BEAT_INTERVAL_MS from
// registration to deregistration, as a 1.x client does (PUT
// /instance/beat with the beat JSON). A beat that fails fails the test.
const beating = new Map(); // `${service} ${ip:port}` -> {port, service, inst}
let beatProblem = null;
let beatTimer = null;

async function beatAll() {
	for (const b of beating.values()) {
		const beat = JSON.stringify({ serviceName: `${GROUP}@@${b.service}`, ip: b.inst.ip,
			port: b.inst.port, cluster: 'DEFAULT', weight: b.inst.weight,
			metadata: b.inst.metadata, ephemeral: true });
		const q = new URLSearchParams({ serviceName: `${GROUP}@@${b.service}`,
			namespaceId: NAMESPACE, beat });
		const r = await httpRequest(b.port, 'PUT', `/nacos/v1/ns/instance/beat?${q}`);
		const j = parseJSON(r.body);
		if ((r.status !== 200 || !j || j.code !== 10200) && beating.has(`${b.service} ${key(b.inst)}`))
			beatProblem = beatProblem || `a beat of ${key(b.inst)} in ${b.service}: ${r.status} ` +
				`${r.body.slice(0, 200)}`;
	}
}

async function httpRegister(port, service, inst) {
	const r = await httpRequest(port, 'POST', `/nacos/v1/ns/instance?${instanceQuery(service, inst)}`);
	if (r.status !== 200 || r.body !== 'ok')
		fail(`HTTP register ${key(inst)} in ${service}: ${r.status} ${r.body.slice(0, 200)}`);
	beating.set(`${service} ${key(inst)}`, { port, service, inst });
	if (!beatTimer) {
		let busy = false;
		beatTimer = setInterval(() => {
			if (busy) return;
			busy = true;
			beatAll().finally(() => { busy = false; });
		}, BEAT_INTERVAL_MS);
	}
}

async function httpDeregister(port, service, inst) {
	beating.delete(`${service} ${key(inst)}`);
	const q = new URLSearchParams({ serviceName: service, groupName: GROUP, namespaceId: NAMESPACE,
		ip: inst.ip, port: String(inst.port), ephemeral: 'true' });
	const r = await httpRequest(port, 'DELETE', `/nacos/v1/ns/instance?${q}`);
	if (r.status !== 200 || r.body !== 'ok')
		fail(`HTTP deregister ${key(inst)} in ${service}: ${r.status} ${r.body.slice(0, 200)}`);
}

// '' when node `n` lists exactly `want` for service, else what it saw.
async function httpListDiff(n, service, want) {
	const q = new URLSearchParams({ serviceName: `${GROUP}@@${service}`, namespaceId: NAMESPACE,
		healthyOnly: 'false' });
	const r = await httpRequest(n.nacosPort, 'GET', `/nacos/v1/ns/instance/list?${q}`);
	const j = parseJSON(r.body);
	if (r.status !== 200 || !j) return `node ${n.i}: ${r.status} ${r.body.slice(0, 200)}`;
	const d = hostsDiff(j.hosts, want);
	return d ? `node ${n.i}: ${d}` : '';
}

// Every running node lists exactly `want` (a cluster answers lists from
// each node's copy, so a node may lag its peers by a few ms).
async function everyNodeLists(what, service, want, timeoutMs = 5000) {
	await waitFor(`every node to list ${what} in ${service}: [${want.map(key).join(' ')}]`,
		timeoutMs, async () => {
			for (const n of nodes) {
				if (n.exited) continue;
				const d = await httpListDiff(n, service, want);
				if (d) return d;
			}
			return true;
		});
}

// ---- what the test registers ----

function key(h) {
	return `${h.ip}:${h.port}`;
}

function brief(hosts) {
	if (!Array.isArray(hosts)) return JSON.stringify(hosts);
	return '[' + hosts.map(h => `${key(h)}${h.healthy === false ? '(unhealthy)' : ''}`)
		.join(' ') + ']';
}

// '' when hosts are exactly `want` (each healthy, enabled, ephemeral, in
// the DEFAULT cluster, with its weight and metadata), else what differs.
// Both the SDK's instances and the HTTP list's hosts have these fields.
function hostsDiff(hosts, want) {
	if (!Array.isArray(hosts)) return `hosts is ${JSON.stringify(hosts)}`;
	const got = new Map(hosts.map(h => [key(h), h]));
	if (got.size !== hosts.length) return `duplicate hosts in ${brief(hosts)}`;
	if (hosts.length !== want.length || !want.every(w => got.has(key(w))))
		return `hosts ${brief(hosts)}, want [${want.map(key).join(' ')}]`;
	for (const w of want) {
		const h = got.get(key(w));
		const d = [];
		if (h.port !== w.port) d.push(`port ${JSON.stringify(h.port)} (a number is wanted)`);
		if (h.weight !== w.weight) d.push(`weight ${JSON.stringify(h.weight)}`);
		if (h.healthy !== true) d.push(`healthy ${JSON.stringify(h.healthy)}`);
		if (h.enabled !== true) d.push(`enabled ${JSON.stringify(h.enabled)}`);
		if (h.ephemeral !== true) d.push(`ephemeral ${JSON.stringify(h.ephemeral)}`);
		if (h.clusterName !== undefined && h.clusterName !== null && h.clusterName !== 'DEFAULT')
			d.push(`clusterName ${JSON.stringify(h.clusterName)}`);
		if (!util.isDeepStrictEqual(h.metadata, w.metadata))
			d.push(`metadata ${JSON.stringify(h.metadata)}`);
		if (d.length) return `${key(w)}: ${d.join(', ')}`;
	}
	return '';
}

// ---- an SDK client in its own process ----

class SdkClient {
	constructor(tag, serverAddr) {
		this.tag = tag;
		this.serverAddr = serverAddr;
		this.log = path.join(workDir, `client-${tag}.log`);
		this.next = 1;
		this.pending = new Map();
		this.events = []; // {tag, hosts, t}
		this.ready = null;
		this.exited = null;
		const fd = fs.openSync(this.log, 'a');
		this.proc = spawn('setpriv', ['--pdeathsig', 'KILL', process.execPath,
			path.join(__dirname, 'sdk-client.js'), args.modules, serverAddr, NAMESPACE],
		{ stdio: ['ignore', fd, fd, 'ipc'] });
		fs.closeSync(fd);
		this.proc.on('exit', (code, sig) => {
			this.exited = `exit ${code === null ? sig : code}`;
			for (const [, p] of this.pending) p.reject(new Failure(`SDK client ${tag} died (${this.exited})`));
			this.pending.clear();
		});
		this.proc.on('message', m => {
			if ('ready' in m) this.ready = m;
			else if ('event' in m) this.events.push({ tag: m.event, hosts: m.hosts, err: m.err, t: m.t });
			else if (this.pending.has(m.id)) {
				const p = this.pending.get(m.id);
				this.pending.delete(m.id);
				if (m.ok) p.resolve(m.value);
				else p.reject(new Error(m.error));
			}
		});
		clients.push(this);
	}

	async started() {
		await waitFor(`SDK client ${this.tag} to connect (its constructor, serverAddr ` +
			`${this.serverAddr})`, CLIENT_START_MS, () => this.ready !== null || 'not yet');
		if (!this.ready.ready) fail(`SDK client ${this.tag}: constructor failed: ${this.ready.error}`);
		if (this.ready.version !== PINNED)
			fail(`${PKG_NAME} is version ${this.ready.version}, not ${PINNED}`);
	}

	// One call, bounded by CALL_MS; an error from the SDK is thrown as is.
	call(op, ...callArgs) {
		const id = this.next++;
		return new Promise((resolve, reject) => {
			const timer = setTimeout(() => {
				this.pending.delete(id);
				reject(new Failure(`SDK client ${this.tag}: ${op} did not answer within ${CALL_MS} ms`));
			}, CALL_MS);
			this.pending.set(id, {
				resolve: v => { clearTimeout(timer); resolve(v); },
				reject: e => { clearTimeout(timer); reject(e); },
			});
			this.proc.send({ id, op, args: callArgs });
		});
	}

	// A call that must succeed: its error fails the step, naming it.
	async must(op, ...callArgs) {
		try {
			return await this.call(op, ...callArgs);
		} catch (err) {
			if (err instanceof Failure) throw err;
			fail(`SDK client ${this.tag}: ${op}(${callArgs.map(a => JSON.stringify(a)).join(', ')}) ` +
				`failed: ${err.message}`);
		}
		return undefined;
	}

	// Subscribes a listener named `ltag`; its calls land in this.events.
	async subscribe(service, ltag) {
		await this.must('subscribe', service, GROUP, [], ltag);
		return Date.now();
	}

	// The listener `ltag` was called with exactly `want` at or after `since`,
	// within PUSH_WAIT_MS.
	async sees(what, ltag, since, want, timeoutMs = PUSH_WAIT_MS) {
		await waitFor(`SDK client ${this.tag}'s listener "${ltag}" to be called ${what} with ` +
			`[${want.map(key).join(' ')}]`, timeoutMs, () => {
			const calls = [];
			for (const e of this.events) {
				if (e.tag !== ltag || e.t < since) continue;
				if (e.err) return `called with an error: ${e.err}`;
				if (hostsDiff(e.hosts, want) === '') return true;
				calls.push(`${stamp0(e.t)} ${brief(e.hosts)}`);
			}
			return calls.length ? `calls since the change: ${calls.join(', ')}` :
				'no call since the change';
		});
	}

	// Retries a query until its answer is exactly `want`.
	async answers(what, want, op, ...callArgs) {
		await waitFor(`SDK client ${this.tag}: ${what} to answer [${want.map(key).join(' ')}]`,
			5000, async () => {
				let hosts;
				try {
					hosts = await this.call(op, ...callArgs);
				} catch (err) {
					if (err instanceof Failure) throw err;
					return `error: ${err.message}`;
				}
				const d = hostsDiff(hosts, want);
				return d === '' ? true : d;
			});
	}
}

// The SDK's listener only reports pushes once its first poll (1 s after
// subscribe) is behind it; waiting SUBSCRIBE_SETTLE_MS keeps a poll from
// standing in for a push.
async function settle(since) {
	const left = since + SUBSCRIBE_SETTLE_MS - Date.now();
	if (left > 0) await napMs(left);
}

// ---- nodes ----

// A node's gRPC counters from its admin /metrics: every metric line whose
// name has "grpc" in it, as {name: value}.
async function grpcMetrics(n) {
	const r = await httpRequest(n.adminPort, 'GET', '/metrics');
	const out = {};
	if (r.status !== 200) return out;
	for (const line of r.body.split('\n')) {
		const m = /^([a-z_]*grpc[a-z_]*)(\{[^}]*\})?\s+([0-9.e+-]+)$/.exec(line);
		if (m) out[m[1] + (m[2] || '')] = Number(m[3]);
	}
	return out;
}

function metric(ms, re) {
	const k = Object.keys(ms).find(x => re.test(x));
	return k === undefined ? undefined : ms[k];
}

async function waitNodesUp(which) {
	await waitFor(`node(s) ${which.map(n => n.i).join(', ')} to answer GET /nacos/v1/ns/operator/` +
		'metrics with status UP and accept TCP on the gRPC port', START_MS, async () => {
		for (const n of which) {
			const r = await httpRequest(n.nacosPort, 'GET', '/nacos/v1/ns/operator/metrics');
			const j = parseJSON(r.body);
			if (r.status !== 200 || !j || j.status !== 'UP')
				return `node ${n.i}: ${r.status} ${r.body.slice(0, 200)}`;
			const ok = await new Promise(resolve => {
				const s = net.connect(n.grpcPort, '127.0.0.1');
				s.once('connect', () => { s.destroy(); resolve(true); });
				s.once('error', () => resolve(false));
			});
			if (!ok) return `node ${n.i}: nothing listens on gRPC port ${n.grpcPort}`;
		}
		return true;
	});
	if (nodes.length > 1) {
		await waitFor('every node READY, seeing all three members UP and READY (admin /cluster)',
			START_MS, async () => {
				for (const n of nodes) {
					const r = await httpRequest(n.adminPort, 'GET', '/cluster');
					const j = parseJSON(r.body);
					if (r.status !== 200 || !j || !j.ready || !Array.isArray(j.members) ||
						j.members.length !== 3 ||
						!j.members.every(m => m.health === 'UP' && m.ready && m.slots > 0))
						return `node ${n.i}: ${r.status} ${r.body.slice(0, 300)}`;
				}
				return true;
			});
	}
}

async function startNodes() {
	const clustered = args.nodes > 1;
	for (let attempt = 1; ; attempt++) {
		const ports = await pickPorts(args.nodes);
		nodes.length = 0;
		ports.forEach((p, i) => nodes.push({ i, ...p, log: path.join(workDir, `node${i}.log`) }));
		if (clustered) {
			fs.writeFileSync(path.join(workDir, 'cluster.conf'), '# written by e2e.js\n' +
				nodes.map(n => `127.0.0.1:${n.peerPort}\n`).join(''));
			fs.writeFileSync(path.join(workDir, 'secret'),
				require('crypto').randomBytes(32).toString('hex'), { mode: 0o600 });
		}
		for (const n of nodes) startNode(n, clustered);
		try {
			await waitNodesUp(nodes);
			break;
		} catch (err) {
			// A port taken between the pick and the start: new ports, again.
			if (!(err instanceof Failure) || attempt === 3 || !nodes.some(n => n.exited)) throw err;
			say(`a node exited at start (attempt ${attempt}); new ports`);
			killAll();
			await napMs(100);
		}
	}
	say(`${nodes.length} node(s) up: nacos ports ${nodes.map(n => n.nacosPort).join(', ')}, ` +
		`gRPC ports ${nodes.map(n => n.grpcPort).join(', ')}`);
}

// Stops node n on purpose (SIGTERM, exit 0): until startNode, waits do not
// count its absence as a failure.
async function stopNode(n) {
	n.down = true;
	n.proc.kill('SIGTERM');
	await waitFor(`node ${n.i} to exit after SIGTERM`, 10000, () => n.exited !== null || 'running');
	if (n.exited !== 'exit 0') fail(`node ${n.i} stopped with ${n.exited}, not exit 0`);
}

// ---- the lifecycle ----

async function e2e() {
	const flags = helpFlags();
	if (!flags.has('--grpc-port')) {
		process.stdout.write(`SKIP: ${args.distrod} --help has no --grpc-port: this distrod ` +
			'serves no Nacos 2.x gRPC\n');
		process.exit(SKIP);
	}
	const pkg = JSON.parse(fs.readFileSync(path.join(PKG, 'package.json'), 'utf8'));
	if (pkg.version !== PINNED) fail(`${PKG} is version ${pkg.version}, not ${PINNED}`);

	await startNodes();
	const nA = nodes[0];
	const nB = nodes[nodes.length > 1 ? 1 : 0];
	const nH = nodes[nodes.length > 1 ? 2 : 0];
	const tag = `${args.nodes === 1 ? 's' : 'c'}${process.pid}`;
	const SVC = `e2e2-${tag}`; // registerInstance by A and by H
	const SVC_BATCH = `e2e2-batch-${tag}`; // batchRegisterInstance by A
	const SVC_REDO = `e2e2-redo-${tag}`; // A's registration that must survive a restart

	const I1 = { ip: '198.18.0.11', port: 8080, weight: 1,
		metadata: { zone: 'a', version: '2.0', 'quote"and\\slash': 'ü ✓ <&> \'' } };
	const I2 = { ip: '192.0.2.12', port: 9090, weight: 3, metadata: { by: 'http' } };
	const I3 = { ip: '198.18.0.13', port: 7001, weight: 1, metadata: { batch: '1' } };
	const I4 = { ip: '198.18.0.14', port: 7002, weight: 2.5, metadata: {} };
	const I5 = { ip: '198.18.0.15', port: 7003, weight: 1, metadata: { batch: '2' } };
	const IR = { ip: '192.0.2.20', port: 6000, weight: 1, metadata: { survives: 'restart' } };
	const I6 = { ip: '192.0.2.16', port: 9191, weight: 1, metadata: { by: 'http', after: 'restart' } };

	// 1. Two SDK clients connect (constructor: gRPC setup, server check, health check).
	say('step: SDK clients A (node %d) and B (node %d) connect', nA.i, nB.i);
	const A = new SdkClient('A', `127.0.0.1:${nA.nacosPort}`);
	const B = new SdkClient('B', `127.0.0.1:${nB.nacosPort}`);
	await A.started();
	await B.started();

	// 2. Both subscribe to an empty service: an empty list, no error.
	say('step: A and B subscribe to %s (empty)', SVC);
	const subA = await A.subscribe(SVC, 'A-svc');
	const subB = await B.subscribe(SVC, 'B-svc');
	await A.answers('getAllInstances of an empty service', [], 'getAllInstances', SVC, GROUP);
	await settle(Math.max(subA, subB));

	// 3. A registers I1: pushed to A and B, listed by every node's HTTP API.
	say('step: A registers %s', key(I1));
	let since = Date.now();
	await A.must('registerInstance', SVC, GROUP, I1);
	await A.sees('after its register', 'A-svc', since, [I1]);
	await B.sees('after A\'s register', 'B-svc', since, [I1]);
	await everyNodeLists('A\'s instance (HTTP API)', SVC, [I1]);

	// 4. The HTTP client registers I2 on its node: pushed to both SDK clients.
	say('step: the HTTP client registers %s (node %d)', key(I2), nH.i);
	since = Date.now();
	await httpRegister(nH.nacosPort, SVC, I2);
	await A.sees('after the HTTP register', 'A-svc', since, [I1, I2]);
	await B.sees('after the HTTP register', 'B-svc', since, [I1, I2]);
	await everyNodeLists('both instances', SVC, [I1, I2]);

	// 5. Reads: from the cache (subscribe=true), from the server (false),
	//    and selectInstances' healthy flag.
	say('step: getAllInstances / selectInstances');
	await A.answers('getAllInstances (subscribed)', [I1, I2], 'getAllInstances', SVC, GROUP);
	await B.answers('getAllInstances(subscribe false)', [I1, I2],
		'getAllInstances', SVC, GROUP, [], false);
	await B.answers('selectInstances(healthy true, subscribe false)', [I1, I2],
		'selectInstances', SVC, GROUP, [], false, true);
	await B.answers('selectInstances(healthy false, subscribe false)', [],
		'selectInstances', SVC, GROUP, [], false, false);
	await A.answers('selectInstances(healthy true, subscribe true)', [I1, I2],
		'selectInstances', SVC, GROUP, [], true, true);
	const one = await A.must('selectOneHealthyInstance', SVC, GROUP, [], false);
	if (!one || ![I1, I2].some(w => key(w) === key(one)))
		fail(`selectOneHealthyInstance answered ${JSON.stringify(one)}, want one of ${key(I1)}, ${key(I2)}`);

	// 6. Batch register, then a second batch that replaces the first set.
	say('step: A batch-registers [%s %s] in %s', key(I3), key(I4), SVC_BATCH);
	await A.must('batchRegisterInstance', SVC_BATCH, GROUP, [I3, I4]);
	await everyNodeLists('the batch', SVC_BATCH, [I3, I4]);
	await B.answers('getAllInstances(subscribe false) of the batch', [I3, I4],
		'getAllInstances', SVC_BATCH, GROUP, [], false);
	const subBatch = await B.subscribe(SVC_BATCH, 'B-batch');
	await settle(subBatch);
	say('step: A batch-registers [%s %s]: the batch replaces the set', key(I4), key(I5));
	since = Date.now();
	await A.must('batchRegisterInstance', SVC_BATCH, GROUP, [I4, I5]);
	await B.sees('after the second batch', 'B-batch', since, [I4, I5]);
	await everyNodeLists('the second batch only', SVC_BATCH, [I4, I5]);

	// 7. A deregisters I1: pushed to both; gone from every node.
	say('step: A deregisters %s', key(I1));
	since = Date.now();
	await A.must('deregisterInstance', SVC, GROUP, I1);
	await A.sees('after its deregister', 'A-svc', since, [I2]);
	await B.sees('after A\'s deregister', 'B-svc', since, [I2]);
	await everyNodeLists('the HTTP client\'s instance only', SVC, [I2]);

	// 8. The HTTP client deregisters I2: the empty list is pushed (the
	//    clients run with namingPushEmptyProtection off to see it).
	say('step: the HTTP client deregisters %s: an empty list is pushed', key(I2));
	since = Date.now();
	await httpDeregister(nH.nacosPort, SVC, I2);
	await A.sees('after the HTTP deregister', 'A-svc', since, []);
	await B.sees('after the HTTP deregister', 'B-svc', since, []);
	await everyNodeLists('nothing', SVC, []);

	// 9. Restart A's node: A reconnects and replays its registrations
	//    (registerInstance and the batch) and its subscription.
	say('step: A registers %s in %s, B subscribes to it', key(IR), SVC_REDO);
	await A.must('registerInstance', SVC_REDO, GROUP, IR);
	await everyNodeLists('A\'s instance', SVC_REDO, [IR]);
	const subRedo = await B.subscribe(SVC_REDO, 'B-redo');
	await B.answers('getAllInstances(subscribe false)', [IR],
		'getAllInstances', SVC_REDO, GROUP, [], false);
	await settle(subRedo);

	say('step: restart node %d (A\'s)', nA.i);
	// Before the SIGTERM, not after the exit: a stopping node deregisters
	// its connections' instances while its workers still run (docs/nacos.md,
	// gRPC, "shutdown"; commit 504a203), so B may be pushed their removal
	// before node 0 has exited. Taken after the exit, this missed that push whenever it
	// came first (most runs on a loaded machine) and the step timed out
	// although node 1 had pushed and B had acked.
	const tStopping = Date.now();
	await stopNode(nA);
	const tStop = Date.now();
	if (nodes.length > 1) {
		// A's instances leave the survivors while node 0 stops (its
		// deregistration of A's connection), or, should that be lost with
		// the dying node, expire at their owners after the delete timeout:
		// nothing renews them once the node holding A's connection is gone.
		// Only A's replay can bring them back.
		say('step: while node %d is down, A\'s instances leave the survivors', nA.i);
		const bound = () => tStop + DELETE_TIMEOUT_MS + BEAT_TIMEOUT_MS + 5000 - Date.now();
		await everyNodeLists('nothing while A\'s node is down', SVC_REDO, [], bound());
		await everyNodeLists('nothing while A\'s node is down', SVC_BATCH, [], bound());
		say('A\'s instances gone from the survivors %d ms after the stop', Date.now() - tStop);
	}
	startNode(nA, nodes.length > 1);
	await waitNodesUp([nA]);
	say('node %d back after %d ms; waiting for A\'s replay', nA.i, Date.now() - tStop);
	await everyNodeLists('A\'s instance again (replayed registerInstance)', SVC_REDO, [IR], REDO_MS);
	await everyNodeLists('A\'s batch again (replayed batchRegisterInstance)', SVC_BATCH, [I4, I5],
		REDO_MS);
	const tBack = Date.now();
	say('A\'s registrations are back %d ms after the stop', tBack - tStop);
	if (nodes.length > 1) {
		// B's node never stopped: B saw IR go (from the SIGTERM on) and
		// come back. (With one node B reconnects too and may never see IR
		// missing: its cache holds IR, and a push of the same list calls
		// no listener.)
		await B.sees('when A\'s instance left', 'B-redo', tStopping, []);
		await B.sees('after A\'s replay', 'B-redo', tBack - 1000, [IR]);
	}

	// 10. A's subscription was replayed on its new connection: a change
	//     made now reaches A's listener as a push.
	say('step: A\'s replayed subscription: the HTTP client registers %s', key(I6));
	// The replay runs every task in one pass every 3 s; A's subscription
	// went in the same pass as its registrations, a round trip apart. The
	// wait below gives that pass time to end; it asserts nothing.
	await napMs(1000);
	since = Date.now();
	await httpRegister(nH.nacosPort, SVC, I6);
	await A.sees('after the restart (its replayed subscription)', 'A-svc', since, [I6]);
	await B.sees('after the restart', 'B-svc', since, [I6]);

	// 11. Clean up through both APIs; the clients are still connected.
	say('step: deregister everything');
	since = Date.now();
	await A.must('deregisterInstance', SVC_REDO, GROUP, IR);
	await B.sees('after A\'s last deregister', 'B-redo', since, []);
	await httpDeregister(nH.nacosPort, SVC, I6);
	await everyNodeLists('nothing', SVC, []);
	await everyNodeLists('nothing', SVC_REDO, []);

	// 12. Every NotifySubscriberRequest a node sent was acknowledged: the SDK
	//     sends no ack for a push it cannot decode (and the node then sends
	//     it again), so a push the listeners never showed would stand out
	//     here. Checked where the node counts both (its admin /metrics).
	say('step: every push acknowledged (admin /metrics)');
	for (const n of nodes) {
		let seen = '';
		await waitFor(`node ${n.i}: gRPC pushes sent == pushes acknowledged`, 5000, async () => {
			const ms = await grpcMetrics(n);
			const sent = metric(ms, /grpc_pushes/);
			const acked = metric(ms, /grpc_push_acked/);
			if (sent === undefined || acked === undefined) {
				seen = 'not counted';
				return true;
			}
			seen = `${sent} sent, ${acked} acknowledged`;
			return sent === acked ? true : seen;
		});
		say('node %d: %s', n.i, seen);
	}

	// 13. A clean stop: SDK clients first, then SIGTERM to every node, each
	//     exits 0 within 10 s (under ASan this is where leaks show).
	say('step: stop the clients, SIGTERM every node, each exits 0');
	clearInterval(beatTimer);
	clientsMayStop = true;
	for (const c of clients) c.proc.disconnect();
	await waitFor('the SDK client processes to exit', 10000,
		() => clients.every(c => c.exited !== null) || 'running');
	clients.length = 0;
	nodesMayStop = true;
	for (const n of nodes) n.proc.kill('SIGTERM');
	await waitFor('every node to exit after SIGTERM', 10000, () => {
		const running = nodes.filter(n => !n.exited).map(n => n.i);
		return running.length === 0 ? true : `node(s) ${running.join(', ')} still running`;
	});
	for (const n of nodes)
		if (n.exited !== 'exit 0') fail(`node ${n.i} stopped with ${n.exited}, not exit 0`);
	say('passed: %d + %d listener calls', A.events.length, B.events.length);
}

e2e().then(() => {
	process.exit(0);
}, async err => {
	process.stderr.write(`\nFAILED (${args.nodes === 1 ? 'standalone' : '3-node cluster'}): ` +
		`${err instanceof Failure ? err.message : err.stack}\n`);
	for (const n of nodes) {
		if (n.exited) continue;
		const ms = await grpcMetrics(n);
		process.stderr.write(`---- node ${n.i} gRPC counters: ${JSON.stringify(ms)}\n`);
	}
	dumpLogs();
	process.exit(1);
});
