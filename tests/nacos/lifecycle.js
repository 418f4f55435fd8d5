'use strict';
/*
 * lifecycle.js - the real npm Nacos client (nacos-naming 2.6.3) against real
 * distrod processes, end to end: what an unmodified Node.js application does
 * with a Nacos server, asserted step by step.
 *
 *   node lifecycle.js --distrod BIN --modules DIR [--nodes 1|3] [--auth DISTROCTL]
 *
 * DIR is where `npm install --prefix DIR nacos-naming@2.6.3` put the package
 * (tests/nacos/npm-install.sh). --nodes 3 starts a 3-node cluster and gives
 * the client all three Nacos ports in `serverList`; the client then sends
 * each request to a random node, so registers, beats, polls and
 * subscriptions land on every node.
 *
 * Processes: this script starts every distrod itself on 127.0.0.1 with free
 * ports (found by listening on port 0, all held until every one is chosen)
 * under `setpriv --pdeathsig KILL`, so a node dies with the script even when
 * the script is killed (ctest's timeout); on any exit the script kills them.
 * Each node's output goes to a log in a private directory; on a failure
 * the last lines of every log are printed. DISTRO_NACOS_KEEP=1 keeps the
 * directory.
 *
 * What the client shows us. Its subscribe listener fires with the new host
 * list whether the news came by UDP push or by its poll (every cacheMillis),
 * so each push step also checks the client's own log line for a received
 * UDP packet ("[PushReceiver] received push data: <json> from <addr>:<port>",
 * given to the logger we pass): a change must arrive as a push, from a
 * loopback address, with that subscriber's host list. The client drops any
 * list without hosts (ServiceInfo.isValid), so a change to an empty list is
 * seen only in that log line, and by asking the nodes directly.
 *
 * Timings: the client beats first ~10 s after it is created (its beat loop
 * sleeps 10 s before learning the server's clientBeatInterval), so no
 * instance may go unhealthy sooner than that: the nodes run with
 * --beat-interval 1000 --beat-timeout 13000 --delete-timeout 20000. A second
 * client registers one instance and closes at once (an application that
 * died): it must turn unhealthy after 13 s and vanish after 20 s, while the
 * first client's beats keep its two instances healthy past 20 s (they were
 * registered before it, so without beats they would have gone first). Every
 * wait is bounded and polls a condition; nothing sleeps as an assertion.
 *
 * What the client hides is checked too: a request a node refuses is only a
 * warning in its log (it then tries the next node of serverList), a failed
 * poll or an undecodable push only an 'error' event, and an unmatched ack
 * only a second copy of the push; any of these fails the test. At the end
 * every node gets SIGTERM and must exit 0 (ASan's leak check runs there).
 *
 * Instance addresses are documentation ranges (192.0.2.0/24, 198.18.0.0/15):
 * nothing connects to them, and distrod must not either.
 *
 * --auth: the nodes run with --auth-users (a users file whose bcrypt hash
 * DISTROCTL's hash-password makes) and both clients get `username` and
 * `password`, which nacos-naming adds to every call (it never logs in); a
 * call without them must be refused 403, and the whole lifecycle must pass
 * as without auth. The script's own requests to the nodes carry them too.
 *
 * Exit status: 0 passed, 1 failed (with the step and what was seen).
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
	for (let i = 0; i < argv.length; i++) {
		const k = argv[i];
		const v = argv[i + 1];
		if (k === '--distrod') a.distrod = v;
		else if (k === '--modules') a.modules = v;
		else if (k === '--nodes') a.nodes = Number(v);
		else if (k === '--auth') a.auth = v; // distroctl, for hash-password
		else throw new Error(`unknown argument ${k}`);
		i++;
	}
	if (!a.distrod || !a.modules || !(a.nodes === 1 || a.nodes === 3))
		throw new Error('usage: lifecycle.js --distrod BIN --modules DIR [--nodes 1|3] ' +
			'[--auth DISTROCTL]');
	return a;
}

const args = parseArgs(process.argv.slice(2));
const NAMING = path.resolve(args.modules, 'node_modules', 'nacos-naming');
const PINNED = '2.6.3';

const BEAT_INTERVAL_MS = 1000;
const BEAT_TIMEOUT_MS = 13000;
const DELETE_TIMEOUT_MS = 20000;
const PUSH_WAIT_MS = 5000; // a change at the client: pushes take ms, this is the bound
const START_MS = 20000; // a node (ASan build) listens and is READY within this
// --auth: the one user, and what the clients and the script's own requests add.
const AUTH_USER = 'nacos';
const AUTH_PASSWORD = 'lifecycle pw&=';
const AUTH_OPTS = args.auth ? { username: AUTH_USER, password: AUTH_PASSWORD } : {};
const AUTH_QS = args.auth ?
	`&${new URLSearchParams({ username: AUTH_USER, password: AUTH_PASSWORD })}` : '';

const t0 = Date.now();
function stamp() {
	return `+${((Date.now() - t0) / 1000).toFixed(3)}s`;
}
function say(...a) {
	process.stdout.write(`${stamp()} ${util.format(...a)}\n`);
}

// ---- processes ----

const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'distro-nacos-'));
const nodes = []; // {i, pid, proc, nacosPort, adminPort, peerPort, log}

function killAll() {
	for (const n of nodes) {
		if (n.proc && n.proc.exitCode === null && n.proc.signalCode === null) {
			try {
				process.kill(n.proc.pid, 'SIGKILL');
			} catch (_) {
				/* already gone */
			}
		}
	}
}

function cleanup() {
	killAll();
	if (process.env.DISTRO_NACOS_KEEP) {
		process.stderr.write(`lifecycle: kept ${workDir}\n`);
		return;
	}
	try {
		fs.rmSync(workDir, { recursive: true, force: true });
	} catch (_) {
		/* best effort */
	}
}

process.on('exit', cleanup);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'])
	process.on(sig, () => {
		process.stderr.write(`lifecycle: ${sig}\n`);
		process.exit(1);
	});

function dumpLogs() {
	for (const n of nodes) {
		let text = '';
		try {
			text = fs.readFileSync(n.log, 'utf8');
		} catch (_) {
			text = '(no log)';
		}
		const lines = text.split('\n').slice(-40).join('\n');
		process.stderr.write(`---- node ${n.i} (nacos ${n.nacosPort}, admin ${n.adminPort}, ` +
			`peer ${n.peerPort}), last 40 lines of ${n.log} ----\n${lines}\n`);
	}
}

// distrod's flags, from its --help: the test names what it needs and fails
// with a clear message when the binary lacks it.
let FLAGS = null;
function flag(...names) {
	if (FLAGS === null) {
		const help = execFileSync(args.distrod, ['--help'], { encoding: 'utf8' });
		FLAGS = new Set(help.match(/--[a-z][a-z0-9-]*/g) || []);
	}
	for (const n of names)
		if (FLAGS.has(n)) return n;
	throw new Failure(`${args.distrod} has none of the flags ${names.join(', ')} (see its --help)`);
}

// Free loopback ports: listen on port 0 for each, hold all, then release.
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

function nodeArgs(n, clustered) {
	const a = [
		'--bind', '127.0.0.1', '--port', '0',
		flag('--admin-bind', '--http-bind'), '127.0.0.1',
		flag('--admin-port', '--http-port'), String(n.adminPort),
		flag('--nacos-port'), String(n.nacosPort),
		'--workers', '2', '--log-level', 'info',
		'--beat-interval', String(BEAT_INTERVAL_MS),
		'--beat-timeout', String(BEAT_TIMEOUT_MS),
		'--delete-timeout', String(DELETE_TIMEOUT_MS),
	];
	if (FLAGS.has('--nacos-bind')) a.push('--nacos-bind', '127.0.0.1');
	if (args.auth) a.push(flag('--auth-users'), path.join(workDir, 'users'));
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
	fs.writeSync(fd, `=== lifecycle.js: start node ${n.i} (nacos ${n.nacosPort}, admin ` +
		`${n.adminPort}, peer ${n.peerPort})\n`);
	n.proc = spawn('setpriv', ['--pdeathsig', 'KILL', args.distrod, ...nodeArgs(n, clustered)], {
		stdio: ['ignore', fd, fd],
	});
	fs.closeSync(fd);
	n.proc.on('exit', (code, sig) => {
		n.exited = `exit ${code === null ? sig : code}`;
	});
}

// ---- HTTP straight to a node (not through the client) ----

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

// ---- waiting and asserting ----

class Failure extends Error {}

function fail(msg) {
	throw new Failure(msg);
}

function napMs(ms) {
	return new Promise(r => setTimeout(r, ms));
}

// Polls cond (may be async; returns true, or false / a string saying what it
// saw) every 25 ms until it is true, at most timeoutMs. Bounded.
async function waitFor(what, timeoutMs, cond, nodesMayStop = false) {
	const end = Date.now() + timeoutMs;
	let last;
	for (;;) {
		for (const n of nodes)
			if (n.exited && !nodesMayStop)
				fail(`node ${n.i} stopped (${n.exited}) while waiting for ${what}`);
		last = await cond();
		if (last === true) return;
		if (Date.now() >= end) break;
		await napMs(25);
	}
	fail(`timed out after ${timeoutMs} ms waiting for ${what}` +
		(typeof last === 'string' ? `; last seen: ${last}` : ''));
}

// ---- what the test registers ----

const GROUP = 'E2E_GROUP';
const SERVICE = `e2e-${args.nodes === 1 ? 'standalone' : 'cluster'}-${process.pid}`;
const GROUPED = `${GROUP}@@${SERVICE}`;

const INST1 = { ip: '192.0.2.10', port: 8080, clusterName: 'A', weight: 1,
	metadata: { zone: 'a', version: '1.0', 'quote"and\\slash': 'ü ✓ <&> \'' } };
const INST2 = { ip: '198.18.0.20', port: 9090, clusterName: 'B', weight: 2,
	metadata: { zone: 'b' } };
const INST3 = { ip: '192.0.2.30', port: 8080, clusterName: 'A', weight: 1,
	metadata: { zone: 'a', fate: 'its client dies' } };

function key(h) {
	return `${h.ip}:${h.port}`;
}

function briefHosts(hosts) {
	if (!Array.isArray(hosts)) return JSON.stringify(hosts);
	return '[' + hosts.map(h => `${h.ip}:${h.port}/${h.clusterName}` +
		`${h.healthy === false ? '(unhealthy)' : ''}`).join(' ') + ']';
}

function deepEqual(a, b) {
	return util.isDeepStrictEqual(a, b);
}

// '' when host is what want says (healthy as given), else what differs.
function hostDiff(h, want, healthy) {
	const d = [];
	if (h.ip !== want.ip) d.push(`ip ${JSON.stringify(h.ip)}`);
	if (h.port !== want.port) d.push(`port ${JSON.stringify(h.port)} (a number is wanted)`);
	if (h.clusterName !== want.clusterName) d.push(`clusterName ${JSON.stringify(h.clusterName)}`);
	if (h.weight !== want.weight) d.push(`weight ${JSON.stringify(h.weight)}`);
	if (h.healthy !== healthy) d.push(`healthy ${JSON.stringify(h.healthy)}`);
	if (h.enabled !== true) d.push(`enabled ${JSON.stringify(h.enabled)}`);
	if (h.ephemeral !== true) d.push(`ephemeral ${JSON.stringify(h.ephemeral)}`);
	if (!deepEqual(h.metadata, want.metadata)) d.push(`metadata ${JSON.stringify(h.metadata)}`);
	if (typeof h.instanceId !== 'string' || h.instanceId === '')
		d.push(`instanceId ${JSON.stringify(h.instanceId)}`);
	return d.length ? `${key(want)}: ${d.join(', ')}` : '';
}

// '' when hosts are exactly want (a list of [instance, healthy]), else why not.
function hostsDiff(hosts, want) {
	if (!Array.isArray(hosts)) return `hosts is ${JSON.stringify(hosts)}`;
	const got = new Map(hosts.map(h => [key(h), h]));
	if (got.size !== hosts.length) return `duplicate hosts in ${briefHosts(hosts)}`;
	const wantKeys = want.map(([w]) => key(w));
	if (hosts.length !== want.length || !wantKeys.every(k => got.has(k)))
		return `hosts ${briefHosts(hosts)}, want [${wantKeys.join(' ')}]`;
	for (const [w, healthy] of want) {
		const d = hostDiff(got.get(key(w)), w, healthy);
		if (d) return d;
	}
	return '';
}

// ---- the client's log: UDP pushes received ----

const pushes = []; // {t, addr, port, outer, data}
const clientLog = [];
const clientProblems = []; // the clients' warn and error lines

/*
 * The one warning that is not a fault: a poll's answer rendered a moment
 * before a push of the same service reaches the client after the push
 * ("out of date data received", its lastRefTime a few ms older). Push and
 * poll race on any server that does both (Nacos too), more so when the
 * client polls several nodes; the answer was current when rendered. An
 * answer more than 100 ms older than what the client holds still fails.
 */
function benignRace(a) {
	return typeof a[0] === 'string' && a[0].startsWith('[HostReactor] out of date data received') &&
		Number(a[1]) - Number(a[2]) <= 100;
}

// The client reports failed polls and undecodable pushes as 'error' events
// of its HostReactor and PushReceiver (which print them on stderr when no
// one listens): they count as problems too.
function watchErrors(client, tag) {
	const record = what => err => {
		const line = `${stamp()} ${tag} ${what} error event: ${err && err.message}`;
		clientLog.push(line);
		clientProblems.push(line);
	};
	client._hostReactor.on('error', record('HostReactor'));
	client._hostReactor._pushReceiver.on('error', record('PushReceiver'));
}

function makeLogger(tag) {
	const rec = level => (...a) => {
		const line = util.format(...a);
		if (level === 'info' && typeof a[0] === 'string' &&
			a[0].startsWith('[PushReceiver] received push data')) {
			const outer = parseJSON(a[1]);
			pushes.push({ t: Date.now(), addr: a[2], port: a[3], outer,
				data: outer && typeof outer.data === 'string' ? parseJSON(outer.data) : undefined,
				raw: a[1] });
		}
		clientLog.push(`${stamp()} ${tag} ${level}: ${line.slice(0, 2000)}`);
		if ((level === 'warn' || level === 'error') && !benignRace(a))
			clientProblems.push(clientLog.at(-1));
		if (process.env.DISTRO_NACOS_VERBOSE) process.stderr.write(`${clientLog.at(-1)}\n`);
	};
	return { debug: rec('debug'), info: rec('info'), warn: rec('warn'), error: rec('error'),
		log: rec('info') };
}

// Waits for a UDP push, received at or after `since`, for the subscription
// (grouped name, clusters as sent) whose hosts are `want`.
async function waitPush(what, since, clusters, want, timeoutMs = PUSH_WAIT_MS) {
	await waitFor(`a UDP push ${what} (clusters "${clusters}")`, timeoutMs, () => {
		let seen = 'no push since the change';
		for (const p of pushes) {
			if (p.t < since) continue;
			if (!p.outer || p.outer.type !== 'dom' || !p.data) {
				seen = `a push that is not {"type":"dom","data":"<list JSON>"}: ${p.raw}`;
				continue;
			}
			if ((p.data.name || p.data.dom) !== GROUPED || p.data.clusters !== clusters)
				continue; // another subscription's push
			if (p.addr !== '127.0.0.1' && p.addr !== '::ffff:127.0.0.1')
				return `a push from ${p.addr}:${p.port}, not from loopback`;
			if (typeof p.outer.lastRefTime !== 'number' ||
				!Number.isSafeInteger(p.outer.lastRefTime))
				return `a push whose lastRefTime ${p.outer.lastRefTime} is no safe integer ` +
					'(the npm client echoes it as a JS number in its ack)';
			const d = hostsDiff(p.data.hosts, want);
			if (d === '') return true;
			seen = `push at ${((p.t - t0) / 1000).toFixed(3)}s: ${d}`;
		}
		return seen;
	});
}

// A listener's record: every call with the hosts it got.
function recorder() {
	const calls = [];
	const fn = hosts => calls.push({ t: Date.now(), hosts });
	fn.calls = calls;
	return fn;
}

async function waitListener(what, fn, since, want) {
	await waitFor(`the subscribe listener ${what}`, PUSH_WAIT_MS, () => {
		let seen = 'no call since the change';
		for (const c of fn.calls) {
			if (c.t < since) continue;
			const d = hostsDiff(c.hosts, want);
			if (d === '') return true;
			seen = d;
		}
		return seen;
	});
}

// Retries a client call until its answer is `want` (a cluster answers
// lists locally, so a node may lag its peers by a few ms).
async function eventually(what, call, want, timeoutMs = 3000) {
	await waitFor(what, timeoutMs, async () => {
		let hosts;
		try {
			hosts = await call();
		} catch (err) {
			return `error: ${err.message}`;
		}
		const d = hostsDiff(hosts, want);
		return d === '' ? true : d;
	});
}

// ---- the lifecycle ----

async function startNodes() {
	const clustered = args.nodes > 1;
	for (let attempt = 1; ; attempt++) {
		const ports = await freePorts(3 * args.nodes);
		nodes.length = 0;
		for (let i = 0; i < args.nodes; i++)
			nodes.push({ i, nacosPort: ports[3 * i], adminPort: ports[3 * i + 1],
				peerPort: ports[3 * i + 2], log: path.join(workDir, `node${i}.log`) });
		if (clustered) {
			fs.writeFileSync(path.join(workDir, 'cluster.conf'), '# written by lifecycle.js\n' +
				nodes.map(n => `127.0.0.1:${n.peerPort}\n`).join(''));
			fs.writeFileSync(path.join(workDir, 'secret'),
				require('crypto').randomBytes(32).toString('hex'), { mode: 0o600 });
		}
		if (args.auth) {
			// Cost 4: the first check of the password on each node is a bcrypt.
			const hash = execFileSync(args.auth, ['hash-password', '--cost', '4'],
				{ input: `${AUTH_PASSWORD}\n${AUTH_PASSWORD}\n`, encoding: 'utf8' }).trim();
			fs.writeFileSync(path.join(workDir, 'users'), `${AUTH_USER}:${hash}:admin\n`,
				{ mode: 0o600 });
		}
		for (const n of nodes) startNode(n, clustered);
		try {
			await waitFor('every node to answer GET /nacos/v1/ns/operator/metrics with status UP',
				START_MS, async () => {
					for (const n of nodes) {
						const r = await httpRequest(n.nacosPort, 'GET',
							'/nacos/v1/ns/operator/metrics');
						const j = parseJSON(r.body);
						if (r.status !== 200 || !j || j.status !== 'UP')
							return `node ${n.i}: ${r.status} ${r.body.slice(0, 200)}`;
					}
					return true;
				});
			break;
		} catch (err) {
			// A port taken between the pick and the start: new ports, again (as the C harness).
			if (!(err instanceof Failure) || attempt === 3 || !nodes.some(n => n.exited)) throw err;
			say(`a node exited at start (attempt ${attempt}); new ports`);
			killAll();
			await napMs(100);
		}
	}
	if (clustered) {
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
	say(`${nodes.length} node(s) up: nacos ports ${nodes.map(n => n.nacosPort).join(', ')}`);
}

async function nodesList(clusters) {
	// Every node's own answer to a plain list (no udpPort: no subscription).
	const out = [];
	for (const n of nodes) {
		const r = await httpRequest(n.nacosPort, 'GET', '/nacos/v1/ns/instance/list?' +
			new URLSearchParams({ serviceName: GROUPED, clusters, healthyOnly: 'false',
				namespaceId: 'public' }) + AUTH_QS);
		out.push({ n, status: r.status, json: parseJSON(r.body), body: r.body });
	}
	return out;
}

async function lifecycle() {
	const pkg = JSON.parse(fs.readFileSync(path.join(NAMING, 'package.json'), 'utf8'));
	if (pkg.version !== PINNED) fail(`${NAMING} is version ${pkg.version}, not ${PINNED}`);
	const { NacosNamingClient } = require(NAMING);

	await startNodes();
	const serverList = nodes.map(n => `127.0.0.1:${n.nacosPort}`);

	if (args.auth) {
		// Without credentials a node refuses: the clients below pass only because they send them.
		for (const n of nodes) {
			const r = await httpRequest(n.nacosPort, 'GET',
				`/nacos/v1/ns/instance/list?serviceName=${GROUPED}`);
			if (r.status !== 403) fail(`node ${n.i}: a list without credentials: ${r.status}`);
		}
		say('auth: calls without credentials are refused 403');
	}
	const client = new NacosNamingClient({ logger: makeLogger('client'), serverList,
		namespace: 'public', ...AUTH_OPTS });
	watchErrors(client, 'client');
	await client.ready();
	const tClient = Date.now();

	// 1. Server health, as the client sees it.
	say('step: getServerStatus');
	const status = await client.getServerStatus();
	if (status !== 'UP') fail(`getServerStatus() is ${status}, want UP`);

	// 2. Subscribe before the service exists: getAllInstances(subscribe=true)
	//    polls with the client's udpPort (the server's subscription), then
	//    subscribe() keeps a listener on that cache key.
	say('step: subscribe to clusters "A,B" and "B" of an empty service');
	for (const c of ['A,B', 'B']) {
		const hosts = await client.getAllInstances(SERVICE, GROUP, c, true);
		if (!Array.isArray(hosts) || hosts.length !== 0)
			fail(`getAllInstances of a new service, clusters ${c}: ${briefHosts(hosts)}, want []`);
	}
	const onAll = recorder();
	const onB = recorder();
	client.subscribe({ serviceName: SERVICE, groupName: GROUP, clusters: 'A,B' }, onAll);
	client.subscribe({ serviceName: SERVICE, groupName: GROUP, clusters: 'B' }, onB);

	// 3. Register one instance in cluster A: pushed to the "A,B" subscriber.
	say('step: register %s in cluster A', key(INST1));
	let since = Date.now();
	await client.registerInstance(SERVICE, INST1, GROUP);
	const tReg1 = Date.now();
	await waitPush('after the first register', since, 'A,B', [[INST1, true]]);
	await waitListener('("A,B") after the first register', onAll, since, [[INST1, true]]);

	// 4. The second, in cluster B: pushed to both subscribers, each its own view.
	say('step: register %s in cluster B', key(INST2));
	since = Date.now();
	await client.registerInstance(SERVICE, INST2, GROUP);
	await waitPush('after the second register', since, 'A,B', [[INST1, true], [INST2, true]]);
	await waitPush('after the second register', since, 'B', [[INST2, true]]);
	await waitListener('("A,B") after the second register', onAll, since,
		[[INST1, true], [INST2, true]]);
	await waitListener('("B") after the second register', onB, since, [[INST2, true]]);

	// 5. Reads with cluster filters and healthy flags, straight from the server.
	say('step: getAllInstances / selectInstances with cluster filters and healthy flags');
	await eventually('getAllInstances(clusters "A", subscribe false)',
		() => client.getAllInstances(SERVICE, GROUP, 'A', false), [[INST1, true]]);
	await eventually('getAllInstances(clusters "B", subscribe false)',
		() => client.getAllInstances(SERVICE, GROUP, 'B', false), [[INST2, true]]);
	await eventually('getAllInstances(clusters "", subscribe true)',
		() => client.getAllInstances(SERVICE, GROUP, '', true), [[INST1, true], [INST2, true]]);
	await eventually('selectInstances(clusters "A,B", healthy true, subscribe false)',
		() => client.selectInstances(SERVICE, GROUP, 'A,B', true, false),
		[[INST1, true], [INST2, true]]);
	await eventually('selectInstances(clusters "A,B", healthy false, subscribe false)',
		() => client.selectInstances(SERVICE, GROUP, 'A,B', false, false), []);
	await eventually('selectInstances(clusters "B", healthy true, subscribe true)',
		() => client.selectInstances(SERVICE, GROUP, 'B', true, true), [[INST2, true]]);

	// getServicesOfServer: nacos-naming 2.6.3 has no such method on the
	// client; its NamingProxy.getServiceList is what that call is in the
	// other SDKs (GET /service/list, pageNo=0).
	say('step: the service list of the group (getServiceList, pageNo 0)');
	await waitFor(`GET /service/list of group ${GROUP} to be {count: 1, doms: ["${SERVICE}"]}`,
		3000, async () => {
			let r;
			try {
				r = await client._serverProxy.getServiceList(0, 10, GROUP);
			} catch (err) {
				return `error: ${err.message}`;
			}
			return r.count === 1 && deepEqual(r.data, [SERVICE]) ? true : JSON.stringify(r);
		});

	// 6. An application that dies: a second client registers INST3 in cluster
	//    A and closes before its first beat. The first client keeps beating.
	say('step: a second client registers %s in cluster A and dies', key(INST3));
	const stable = Date.now(); // from here INST1 and INST2 must stay, healthy
	const client2 = new NacosNamingClient({ logger: makeLogger('client2'), serverList,
		namespace: 'public', ...AUTH_OPTS });
	watchErrors(client2, 'client2');
	await client2.ready();
	since = Date.now();
	const tReg3 = since; // the server's clock for INST3 starts at or after this
	await client2.registerInstance(SERVICE, INST3, GROUP);
	await client2.close();
	const three = [[INST1, true], [INST2, true], [INST3, true]];
	await waitPush('after the third register', since, 'A,B', three);
	await waitListener('("A,B") after the third register', onAll, since, three);

	// 7. INST3 goes unhealthy after --beat-timeout without beats: pushed, and
	//    the healthy flags of selectInstances split cluster A.
	say('step: %s unhealthy after %d ms without beats', key(INST3), BEAT_TIMEOUT_MS);
	const unhealthy3 = [[INST1, true], [INST2, true], [INST3, false]];
	await waitFor(`a UDP push showing ${key(INST3)} unhealthy (registered at ` +
		`${((tReg3 - t0) / 1000).toFixed(3)}s, --beat-timeout ${BEAT_TIMEOUT_MS})`,
	tReg3 + DELETE_TIMEOUT_MS - Date.now(), () => {
		const d = pushes.filter(p => p.t >= since && p.data && p.data.clusters === 'A,B')
			.map(p => hostsDiff(p.data.hosts, unhealthy3));
		return d.includes('') ? true : (d.at(-1) || 'no push');
	});
	const tUnhealthy = Date.now();
	if (tUnhealthy - tReg3 < BEAT_TIMEOUT_MS - 250)
		fail(`${key(INST3)} unhealthy ${tUnhealthy - tReg3} ms after its register, before ` +
			`--beat-timeout ${BEAT_TIMEOUT_MS}`);
	const before = tReg3 + DELETE_TIMEOUT_MS - Date.now() - 500; // while INST3 is still listed
	await eventually('selectInstances(clusters "A", healthy false, subscribe false)',
		() => client.selectInstances(SERVICE, GROUP, 'A', false, false), [[INST3, false]],
		before);
	await eventually('selectInstances(clusters "A", healthy true, subscribe false)',
		() => client.selectInstances(SERVICE, GROUP, 'A', true, false), [[INST1, true]],
		tReg3 + DELETE_TIMEOUT_MS - Date.now() - 500);
	await eventually('getAllInstances(clusters "A", subscribe false)',
		() => client.getAllInstances(SERVICE, GROUP, 'A', false), [[INST1, true], [INST3, false]],
		tReg3 + DELETE_TIMEOUT_MS - Date.now() - 500);

	// 8. INST3 removed after --delete-timeout: pushed.
	say('step: %s removed after %d ms without beats', key(INST3), DELETE_TIMEOUT_MS);
	since = tUnhealthy;
	await waitPush('removing the expired instance', since, 'A,B', [[INST1, true], [INST2, true]],
		tReg3 + DELETE_TIMEOUT_MS + PUSH_WAIT_MS - Date.now());
	const tGone = Date.now();
	if (tGone - tReg3 < DELETE_TIMEOUT_MS - 250)
		fail(`${key(INST3)} removed ${tGone - tReg3} ms after its register, before ` +
			`--delete-timeout ${DELETE_TIMEOUT_MS}`);

	// 9. The first client's beats kept INST1 and INST2 past the delete timeout.
	say('step: beats kept the first client\'s instances alive past --delete-timeout');
	if (Date.now() - tReg1 <= DELETE_TIMEOUT_MS)
		fail(`only ${Date.now() - tReg1} ms since the first register (test logic)`);
	await eventually('getAllInstances(clusters "A,B", subscribe false) past the delete timeout',
		() => client.getAllInstances(SERVICE, GROUP, 'A,B', false), [[INST1, true], [INST2, true]]);
	for (const [what, list] of [['push', pushes.filter(p => p.data && p.data.clusters === 'A,B')
		.map(p => ({ t: p.t, hosts: p.data.hosts }))], ['listener call', onAll.calls]]) {
		for (const c of list) {
			if (c.t < stable) continue;
			const hosts = Array.isArray(c.hosts) ? c.hosts : [];
			for (const w of [INST1, INST2]) {
				const h = hosts.find(x => key(x) === key(w));
				if (!h || h.healthy !== true)
					fail(`a ${what} at ${((c.t - t0) / 1000).toFixed(3)}s shows ${key(w)} ` +
						`${h ? 'unhealthy' : 'missing'} although its client beats: ` +
						briefHosts(c.hosts));
			}
		}
	}
	say('(first register %d ms ago; client beating since %d ms)', Date.now() - tReg1,
		Date.now() - tClient);

	// 10. Deregister both: each pushed; the empty list only shows in the push
	//     itself (the client keeps its last non-empty list) and in the nodes.
	say('step: deregister %s', key(INST1));
	since = Date.now();
	await client.deregisterInstance(SERVICE, INST1, GROUP);
	await waitPush('after the first deregister', since, 'A,B', [[INST2, true]]);
	await waitListener('("A,B") after the first deregister', onAll, since, [[INST2, true]]);

	say('step: deregister %s', key(INST2));
	since = Date.now();
	await client.deregisterInstance(SERVICE, INST2, GROUP);
	await waitPush('after the second deregister', since, 'A,B', []);
	await waitPush('after the second deregister', since, 'B', []);
	await waitFor('every node to list no instance of the service', 3000, async () => {
		for (const r of await nodesList('')) {
			if (r.status !== 200 || !r.json)
				return `node ${r.n.i}: ${r.status} ${r.body.slice(0, 200)}`;
			const d = hostsDiff(r.json.hosts, []);
			if (d) return `node ${r.n.i}: ${d}`;
		}
		return true;
	});

	// 11. Unsubscribe and close; the nodes still report UP.
	say('step: unSubscribe, close, getServerStatus');
	client.unSubscribe({ serviceName: SERVICE, groupName: GROUP, clusters: 'A,B' }, onAll);
	client.unSubscribe({ serviceName: SERVICE, groupName: GROUP, clusters: 'B' }, onB);
	if ((await client.getServerStatus()) !== 'UP') fail('getServerStatus() not UP at the end');
	await client.close();
	for (const n of nodes)
		if (n.exited) fail(`node ${n.i} stopped (${n.exited})`);

	// 12. What the client hid: a request a node refused is only a warning
	//     (the client then tries another node); a push sent twice means
	//     the client's ack (lastRefTime echoed as a number) went unmatched
	//     and the node retried.
	say('step: no refused request, no push sent twice');
	if (clientProblems.length)
		fail(`the clients logged ${clientProblems.length} warning(s)/error(s), the first: ` +
			clientProblems[0]);
	const sent = new Map();
	for (const p of pushes) {
		const id = `${p.addr}:${p.port} lastRefTime ${p.outer && p.outer.lastRefTime}`;
		if (sent.has(id))
			fail(`the push ${id} arrived twice (${((sent.get(id) - t0) / 1000).toFixed(3)}s and ` +
				`${((p.t - t0) / 1000).toFixed(3)}s): the client's ack was not matched`);
		sent.set(id, p.t);
	}

	// 13. A clean stop: SIGTERM, exit 0 within 10 s (under ASan this is
	//     where leaks and shutdown errors show).
	say('step: SIGTERM every node, each exits 0');
	for (const n of nodes) n.proc.kill('SIGTERM');
	await waitFor('every node to exit after SIGTERM', 10000, () => {
		const running = nodes.filter(n => !n.exited).map(n => n.i);
		return running.length === 0 ? true : `node(s) ${running.join(', ')} still running`;
	}, true);
	for (const n of nodes)
		if (n.exited !== 'exit 0') fail(`node ${n.i} stopped with ${n.exited}, not exit 0`);
	say(`passed: ${pushes.length} UDP pushes received, ${onAll.calls.length} + ` +
		`${onB.calls.length} listener calls`);
}

lifecycle().then(() => {
	process.exit(0);
}, err => {
	process.stderr.write(`\nFAILED (${args.nodes === 1 ? 'standalone' : '3-node cluster'}): ` +
		`${err instanceof Failure ? err.message : err.stack}\n`);
	if (clientProblems.length)
		process.stderr.write(`\n---- the clients' warnings and errors (${clientProblems.length}) ----\n` +
			clientProblems.slice(0, 20).join('\n') + '\n');
	process.stderr.write('\n---- the clients\' log (last 60 lines) ----\n' +
		clientLog.slice(-60).join('\n') + '\n');
	dumpLogs();
	process.exit(1);
});
