'use strict';
/*
 * perf/grpc.js - the Nacos 2.x gRPC side of perf/grpc (Node's standard
 * library only: http2 and a hand-written protobuf encoder for the three
 * messages of nacos_grpc_service.proto, Payload, Metadata and Any).
 *
 *   node perf/grpc.js bodies DIR LIST_SERVICE
 *       Writes the prepared request bodies h2load sends (gRPC-framed
 *       Payloads, as nacos-sdk-rust 0.8.0 encodes them, docs/nacos.md
 *       "Nacos 2.x clients"): DIR/register.bin (InstanceRequest
 *       registerInstance of 198.18.254.1:8080 in perf-grpc-register),
 *       DIR/query.bin (ServiceQueryRequest of LIST_SERVICE) and
 *       DIR/health.bin (HealthCheckRequest).
 *   node perf/grpc.js call HOST:PORT FILE [--bare]
 *       One connection set up as the SDK does (ConnectionSetupRequest on the
 *       bi-stream, ServerCheckRequest) - or with --bare none, as h2load's -
 *       then FILE's request on /Request/request. Prints `TYPE <Metadata.type> <JSON body>`; exit 0
 *       only for grpc-status 0 and resultCode 200.
 *   node perf/grpc.js load --grpc HOST:PORT [--kind register|query|health]
 *        [--body FILE] [--conns 50] [--streams 10] [--duration 10]
 *        [--warmup 1] [--procs 2] [--services 10]
 *       Closed-loop load over connections set up as the SDK does (a server
 *       refuses naming requests on a connection without its
 *       ConnectionSetupRequest, as Nacos does with 301, so h2load, which
 *       cannot open the bi-stream first, cannot load it): --procs
 *       processes share --conns connections, each with --streams calls in
 *       flight. register builds a real change per call (see loadWorker);
 *       query and health send FILE. Output, one line: GRPC_LOAD kind=..
 *       ops=.. ops_per_s=.. p50_us=.. p90_us=.. p99_us=.. max_us=..
 *       errors=.. client_cpu_s=..
 *   node perf/grpc.js push --grpc HOST:PORT --write HOST:PORT [--n 500]
 *        [--service perf-grpc-push] [--instances 16] [--gap-ms 20]
 *       Change -> NotifySubscriberRequest received: one gRPC connection
 *       subscribes to the service (SubscribeServiceRequest); then --n times
 *       one instance is registered with a new weight through the HTTP API
 *       at --write (a Nacos 1.x client's write, so the gRPC connection only
 *       listens), and the latency is from sending that request to the
 *       first push on the bi-stream whose list shows the weight. Every push
 *       is acked (NotifySubscriberResponse with its requestId), as the SDK
 *       does. A change not pushed within 2 s counts as lost.
 *       Output, one line: GRPC_PUSH n=.. lost=.. p50_ms=.. p90_ms=..
 *       p99_ms=.. max_ms=.. pushes=..
 */

const fs = require('fs');
const http = require('http');
const http2 = require('http2');
const path = require('path');

// ---- protobuf, the three messages ----

function varint(n) {
	const b = [];
	while (n > 127) {
		b.push((n & 127) | 128);
		n = Math.floor(n / 128);
	}
	b.push(n);
	return Buffer.from(b);
}
function field(no, buf) {
	return Buffer.concat([varint((no << 3) | 2), varint(buf.length), buf]);
}
// Payload{metadata=2: Metadata{type=3, clientIp=8, headers=7}, body=3: Any{type_url=1, value=2}}
function payload(type, obj, headers = {}) {
	let md = field(3, Buffer.from(type));
	md = Buffer.concat([md, field(8, Buffer.from('127.0.0.1'))]);
	for (const [k, v] of Object.entries(headers))
		md = Buffer.concat([md, field(7, Buffer.concat([field(1, Buffer.from(k)),
			field(2, Buffer.from(v))]))]);
	const any = Buffer.concat([field(1, Buffer.from(type)),
		field(2, Buffer.from(JSON.stringify(obj)))]);
	return Buffer.concat([field(2, md), field(3, any)]);
}
function grpcFrame(buf) {
	const h = Buffer.alloc(5);
	h.writeUInt32BE(buf.length, 1);
	return Buffer.concat([h, buf]);
}
function readVarint(b, o) {
	let r = 0;
	let s = 1;
	let c;
	do {
		if (o >= b.length) throw new Error('truncated varint');
		c = b[o++];
		r += (c & 127) * s;
		s *= 128;
	} while (c & 128);
	return [r, o];
}
function fields(b) {
	const out = [];
	let o = 0;
	while (o < b.length) {
		let k;
		[k, o] = readVarint(b, o);
		const no = Math.floor(k / 8);
		const wt = k & 7;
		if (wt === 2) {
			let l;
			[l, o] = readVarint(b, o);
			out.push([no, b.subarray(o, o + l)]);
			o += l;
		} else if (wt === 0) {
			let v;
			[v, o] = readVarint(b, o);
			out.push([no, v]);
		} else {
			throw new Error(`wire type ${wt}`);
		}
	}
	return out;
}
function decodePayload(b) {
	const p = { type: '', body: null };
	for (const [no, v] of fields(b)) {
		if (no === 2) for (const [n2, v2] of fields(v)) { if (n2 === 3) p.type = v2.toString(); }
		if (no === 3) for (const [n2, v2] of fields(v)) { if (n2 === 2) p.body = JSON.parse(v2.toString()); }
	}
	return p;
}
// Splits complete gRPC messages off acc; returns the rest.
function deframe(acc, onMessage) {
	while (acc.length >= 5 && acc.length >= 5 + acc.readUInt32BE(1)) {
		const n = acc.readUInt32BE(1);
		onMessage(acc.subarray(5, 5 + n));
		acc = acc.subarray(5 + n);
	}
	return acc;
}

// ---- requests, as nacos-sdk-rust 0.8.0 writes them ----

let seq = 1;
function naming(service, extra) {
	return Object.assign(extra, { headers: {}, requestId: String(seq++), namespace: 'public',
		serviceName: service, groupName: 'DEFAULT_GROUP' });
}
function instanceRequest(service, ip, port, weight) {
	return payload('InstanceRequest', naming(service, { type: 'registerInstance',
		instance: { instanceId: null, ip, port, weight, healthy: true, enabled: true,
			ephemeral: true, clusterName: null, serviceName: null, metadata: { app: 'perf' } } }),
	{ app: 'perf' });
}
function queryRequest(service) {
	return payload('ServiceQueryRequest', naming(service, { cluster: '', healthyOnly: false,
		udpPort: 0 }), { app: 'perf' });
}
function subscribeRequest(service) {
	return payload('SubscribeServiceRequest', naming(service, { subscribe: true, clusters: '' }),
		{ app: 'perf' });
}
function setupRequest() {
	return payload('ConnectionSetupRequest', { clientVersion: 'Nacos-Rust-Client:0.8.0',
		abilities: { remoteAbility: { supportRemoteConnection: true },
			configAbility: { supportRemoteMetrics: true },
			namingAbility: { supportDeltaPush: false, supportRemoteMetric: false } },
		tenant: 'public', labels: { AppName: 'perf', source: 'sdk', module: 'naming' },
		headers: {}, requestId: null });
}

// ---- a connection, set up as the SDK does ----

class Conn {
	// bare: no bi-stream and no setup, as h2load's connections.
	constructor(hostPort, bare = false) {
		this.session = http2.connect(`http://${hostPort}`);
		this.session.on('error', err => { this.error = err; });
		this.onPush = null;
		this.bi = null;
		if (bare) return;
		this.bi = this.session.request({ ':method': 'POST', ':path': '/BiRequestStream/requestBiStream',
			'content-type': 'application/grpc', te: 'trailers' });
		let acc = Buffer.alloc(0);
		this.bi.on('data', d => {
			acc = deframe(Buffer.concat([acc, d]), m => {
				const p = decodePayload(m);
				if (p.type === 'NotifySubscriberRequest' || p.type === 'ClientDetectionRequest') {
					const reply = p.type === 'NotifySubscriberRequest' ? 'NotifySubscriberResponse' :
						'ClientDetectionResponse';
					this.bi.write(grpcFrame(payload(reply, { resultCode: 200, errorCode: 0,
						message: 'Response ok', requestId: p.body && p.body.requestId })));
					if (p.type === 'NotifySubscriberRequest' && this.onPush) this.onPush(p.body, Date.now());
				}
			});
		});
		this.bi.on('error', err => { this.error = err; });
		this.bi.write(grpcFrame(setupRequest()));
	}

	// One unary call: resolves {status, type, body}.
	unary(framed, timeoutMs = 5000) {
		return new Promise((resolve, reject) => {
			const s = this.session.request({ ':method': 'POST', ':path': '/Request/request',
				'content-type': 'application/grpc', te: 'trailers' });
			let acc = Buffer.alloc(0);
			let msg = null;
			let status = null;
			const timer = setTimeout(() => { s.close(); reject(new Error('no answer')); }, timeoutMs);
			s.on('response', h => { if (h['grpc-status'] !== undefined) status = h['grpc-status']; });
			s.on('trailers', h => { status = h['grpc-status']; });
			s.on('data', d => { acc = deframe(Buffer.concat([acc, d]), m => { msg = decodePayload(m); }); });
			s.on('end', () => {
				clearTimeout(timer);
				resolve({ status, type: msg && msg.type, body: msg && msg.body });
			});
			s.on('error', err => { clearTimeout(timer); reject(err); });
			s.end(framed);
		});
	}

	async start() {
		const r = await this.unary(grpcFrame(payload('ServerCheckRequest',
			{ headers: {}, requestId: String(seq++) })));
		if (r.type !== 'ServerCheckResponse' || !r.body || !r.body.connectionId)
			throw new Error(`server check: ${JSON.stringify(r)}`);
		return this;
	}

	close() {
		if (this.bi) this.bi.close();
		this.session.close();
	}
}

// ---- load: closed loop over set-up connections ----

/*
 * One load process: `conns` connections, each set up as the SDK does, each
 * with `streams` unary calls in flight (a new one as soon as one answers),
 * for warm-up + duration seconds. Only calls sent after the warm-up count.
 * Register bodies are built per call: connection j registers its own
 * instance 198.18.(j>>8).(j&255):8080 in services perf-grpc-reg-0..S-1 in
 * turn, the weight flipping 1 <-> 2 on each pass, so every call is a real
 * change (one instance per connection and service, as Nacos keeps them).
 */
async function loadWorker(a) {
	const conns = [];
	for (let j = 0; j < a.conns; j++) conns.push(await new Conn(a.grpc).start());
	const fixed = a.kind === 'register' ? null : fs.readFileSync(a.body);
	const lat = [];
	let errors = 0;
	let firstError = '';
	const tStart = Date.now() + a.warmup * 1000;
	const tEnd = tStart + a.duration * 1000;
	async function lane(c, j, l) {
		let k = l;
		while (Date.now() < tEnd) {
			let body = fixed;
			if (!body) {
				const svc = k % a.services;
				const pass = Math.floor(k / a.services);
				const id = a.base + j;
				body = grpcFrame(instanceRequest(`perf-grpc-reg-${svc}`,
					`198.18.${(id >> 8) & 255}.${id & 255}`, 8080, 1 + (pass & 1)));
				k += a.streams;
			}
			const t = process.hrtime.bigint();
			let r;
			try {
				r = await c.unary(body);
			} catch (err) {
				r = { status: 'error', body: { message: err.message } };
			}
			const us = Number(process.hrtime.bigint() - t) / 1000;
			if (Date.now() - us / 1000 < tStart) continue;
			if (r.status !== '0' || !r.body || r.body.resultCode !== 200) {
				errors++;
				firstError = firstError || JSON.stringify(r);
			} else {
				lat.push(us);
			}
		}
	}
	const lanes = [];
	conns.forEach((c, j) => { for (let l = 0; l < a.streams; l++) lanes.push(lane(c, j, l)); });
	await Promise.all(lanes);
	for (const c of conns) c.close();
	return { ok: lat.length, errors, firstError, lat, cpu: process.cpuUsage() };
}

async function load(a) {
	const { fork } = require('child_process');
	const per = Math.ceil(a.conns / a.procs);
	const results = await Promise.all(Array.from({ length: a.procs }, (_, p) => new Promise((resolve, reject) => {
		const n = Math.min(per, a.conns - p * per);
		const ch = fork(__filename, ['load-worker', JSON.stringify(Object.assign({}, a,
			{ conns: n, base: p * per }))], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
		ch.on('message', resolve);
		ch.on('exit', code => (code ? reject(new Error(`load worker exit ${code}`)) : 0));
	})));
	const lat = results.flatMap(r => r.lat).sort((x, y) => x - y);
	const errors = results.reduce((x, r) => x + r.errors, 0);
	const cpuS = results.reduce((x, r) => x + (r.cpu.user + r.cpu.system) / 1e6, 0);
	const first = results.map(r => r.firstError).find(Boolean) || '';
	process.stdout.write(`GRPC_LOAD kind=${a.kind} ops=${lat.length} ops_per_s=${Math.round(lat.length / a.duration)} ` +
		`p50_us=${Math.round(pct(lat, 0.5))} p90_us=${Math.round(pct(lat, 0.9))} ` +
		`p99_us=${Math.round(pct(lat, 0.99))} max_us=${Math.round(lat.at(-1) || 0)} errors=${errors} ` +
		`client_cpu_s=${cpuS.toFixed(2)}${first ? ` first_error=${first.slice(0, 200).replace(/\s/g, '_')}` : ''}\n`);
}

// ---- commands ----

function die(msg) {
	process.stderr.write(`perf/grpc.js: ${msg}\n`);
	process.exit(1);
}

function bodies(dir, listService) {
	fs.mkdirSync(dir, { recursive: true });
	fs.writeFileSync(path.join(dir, 'register.bin'),
		grpcFrame(instanceRequest('perf-grpc-register', '198.18.254.1', 8080, 1)));
	fs.writeFileSync(path.join(dir, 'query.bin'), grpcFrame(queryRequest(listService)));
	fs.writeFileSync(path.join(dir, 'health.bin'),
		grpcFrame(payload('HealthCheckRequest', { headers: {}, requestId: null })));
}

async function call(hostPort, file, bare) {
	const c = bare ? new Conn(hostPort, true) : await new Conn(hostPort).start();
	const r = await c.unary(fs.readFileSync(file));
	c.close();
	process.stdout.write(`TYPE ${r.type} ${JSON.stringify(r.body)}\n`);
	if (r.status !== '0' || !r.body || r.body.resultCode !== 200)
		die(`grpc-status ${r.status}, answer ${JSON.stringify(r.body)}`);
}

function httpPost(hostPort, reqPath) {
	const [host, port] = hostPort.split(':');
	return new Promise((resolve, reject) => {
		const req = http.request({ host, port: Number(port), method: 'POST', path: reqPath,
			agent: false }, res => {
			let body = '';
			res.on('data', d => { body += d; });
			res.on('end', () => (res.statusCode === 200 ? resolve(body) :
				reject(new Error(`${res.statusCode} ${body}`))));
		});
		req.on('error', reject);
		req.end();
	});
}

function pct(sorted, q) {
	return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] : 0;
}

async function push(a) {
	const c = await new Conn(a.grpc).start();
	let waiting = null; // {weight, ip, sent, resolve}
	let pushes = 0;
	c.onPush = (body, t) => {
		pushes++;
		if (!waiting || !body || !body.serviceInfo || !Array.isArray(body.serviceInfo.hosts)) return;
		const h = body.serviceInfo.hosts.find(x => x.ip === waiting.ip && x.port === 8080);
		if (h && h.weight === waiting.weight) {
			const w = waiting;
			waiting = null;
			w.resolve(t - w.sent);
		}
	};
	const r = await c.unary(grpcFrame(subscribeRequest(a.service)));
	if (r.type !== 'SubscribeServiceResponse' || !r.body || r.body.resultCode !== 200)
		die(`subscribe: ${JSON.stringify(r)}`);
	const lat = [];
	let lost = 0;
	for (let k = 0; k < a.n; k++) {
		const ip = `198.18.253.${k % a.instances + 1}`;
		const weight = 1 + (k % 97) / 10 + Math.floor(k / 97); // a new value every change
		const got = new Promise(resolve => { waiting = { ip, weight, sent: 0, resolve }; });
		const q = new URLSearchParams({ serviceName: a.service, ip, port: '8080',
			weight: String(weight), ephemeral: 'true' });
		waiting.sent = Date.now();
		httpPost(a.write, `/nacos/v1/ns/instance?${q}`).catch(err => die(`register: ${err.message}`));
		const ms = await Promise.race([got, new Promise(r2 => setTimeout(() => r2(null), 2000))]);
		if (ms === null) {
			lost++;
			waiting = null;
		} else {
			lat.push(ms);
		}
		await new Promise(r2 => setTimeout(r2, a.gapMs * (0.5 + Math.random())));
	}
	c.close();
	lat.sort((x, y) => x - y);
	process.stdout.write(`GRPC_PUSH n=${a.n} lost=${lost} p50_ms=${pct(lat, 0.5)} ` +
		`p90_ms=${pct(lat, 0.9)} p99_ms=${pct(lat, 0.99)} max_ms=${lat.at(-1) || 0} pushes=${pushes}\n`);
}

async function main() {
	const [cmd, ...rest] = process.argv.slice(2);
	if (cmd === 'bodies' && rest.length === 2) return bodies(rest[0], rest[1]);
	if (cmd === 'call' && (rest.length === 2 || (rest.length === 3 && rest[2] === '--bare')))
		return call(rest[0], rest[1], rest.length === 3);
	if (cmd === 'load-worker') {
		const r = await loadWorker(JSON.parse(rest[0]));
		await new Promise(res => process.send(r, res));
		return undefined;
	}
	if (cmd === 'load') {
		const a = { kind: 'register', conns: 50, streams: 10, duration: 10, warmup: 1, procs: 2,
			services: 10, base: 0 };
		for (let i = 0; i < rest.length; i += 2) {
			const v = rest[i + 1];
			const k = rest[i].replace(/^--/, '');
			if (k === 'grpc' || k === 'body' || k === 'kind') a[k] = v;
			else if (k in a) a[k] = Number(v);
			else die(`unknown argument ${rest[i]}`);
		}
		if (!a.grpc || (a.kind !== 'register' && !a.body)) die('load needs --grpc, and --body unless --kind register');
		return load(a);
	}
	if (cmd === 'push') {
		const a = { n: 500, service: 'perf-grpc-push', instances: 16, gapMs: 20 };
		for (let i = 0; i < rest.length; i += 2) {
			const v = rest[i + 1];
			if (rest[i] === '--grpc') a.grpc = v;
			else if (rest[i] === '--write') a.write = v;
			else if (rest[i] === '--n') a.n = Number(v);
			else if (rest[i] === '--service') a.service = v;
			else if (rest[i] === '--instances') a.instances = Number(v);
			else if (rest[i] === '--gap-ms') a.gapMs = Number(v);
			else die(`unknown argument ${rest[i]}`);
		}
		if (!a.grpc || !a.write) die('push needs --grpc and --write');
		return push(a);
	}
	return die('usage: grpc.js bodies DIR LIST_SERVICE | call HOST:PORT FILE | push --grpc H:P --write H:P');
}

main().then(() => process.exit(0), err => die(err.stack || String(err)));
