'use strict';
/*
 * perf/nacos-push.js - change -> UDP push received, as a Nacos 1.x client
 * sees it (perf/nacos runs it; Node's standard library only).
 *
 *   node perf/nacos-push.js --sub HOST:PORT --write HOST:PORT [--n 500]
 *        [--instances 16] [--service perf-push] [--gap-ms 20]
 *
 * Subscribes like a Nacos client: a UDP socket of its own on 127.0.0.1 and
 * GET /nacos/v1/ns/instance/list?udpPort=<it> on --sub, with the Java
 * client's User-Agent (Nacos pushes only to known client agents), again
 * every 3 s so the subscription never lapses. Then, --n times, changes one
 * instance of the service by registering it with a new weight through
 * --write (POST /nacos/v1/ns/instance, parameters in the query as the npm
 * client sends them) and waits for the first push whose list shows that
 * weight: latency = that packet's arrival - the moment the request was
 * sent (so the write's own round trip, and in a cluster the forwarding to
 * the slot owner and the replication to --sub, are in it). The changes
 * cycle over --instances instances (198.18.255.0/24), so in a cluster
 * their slots, and so their owners, differ. Each push is acked as the
 * client does ({"type":"push-ack","lastRefTime":<echo>,"data":""}, to the
 * packet's source). After each change a pause of --gap-ms, with jitter,
 * keeps consecutive changes out of one coalescing window. A change not
 * pushed within 2 s counts as lost (then the next one starts).
 *
 * Output, one line: PUSH n=.. lost=.. p50_ms=.. p90_ms=.. p99_ms=..
 * max_ms=.. gzip=<packets gzipped> packets=<received>
 */

const dgram = require('dgram');
const http = require('http');
const zlib = require('zlib');

function parseArgs(argv) {
	const a = { n: 500, instances: 16, service: 'perf-push', gapMs: 20 };
	for (let i = 0; i < argv.length; i += 2) {
		const v = argv[i + 1];
		switch (argv[i]) {
		case '--sub': a.sub = v; break;
		case '--write': a.write = v; break;
		case '--n': a.n = Number(v); break;
		case '--instances': a.instances = Number(v); break;
		case '--service': a.service = v; break;
		case '--gap-ms': a.gapMs = Number(v); break;
		default: throw new Error(`unknown argument ${argv[i]}`);
		}
	}
	if (!a.sub || !a.write) throw new Error('usage: nacos-push.js --sub HOST:PORT --write HOST:PORT');
	return a;
}

const args = parseArgs(process.argv.slice(2));
const GROUPED = `DEFAULT_GROUP@@${args.service}`;
const HEADERS = { 'User-Agent': 'Nacos-Java-Client:v1.0.0', 'Client-Version': 'Nacos-Java-Client:v1.0.0',
	'Request-Module': 'Naming', 'Content-Length': '0' };
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

function hostPort(s) {
	const i = s.lastIndexOf(':');
	return { host: s.slice(0, i), port: Number(s.slice(i + 1)) };
}

function request(target, method, path) {
	const { host, port } = hostPort(target);
	return new Promise((resolve, reject) => {
		const req = http.request({ host, port, method, path, agent, headers: HEADERS, timeout: 5000 },
			res => {
				let body = '';
				res.setEncoding('utf8');
				res.on('data', d => { body += d; });
				res.on('end', () => {
					if (res.statusCode !== 200)
						reject(new Error(`${method} ${path}: ${res.statusCode} ${body}`));
					else resolve(body);
				});
			});
		req.on('timeout', () => req.destroy(new Error(`${method} ${path}: timeout`)));
		req.on('error', reject);
		req.end();
	});
}

const nowMs = () => Number(process.hrtime.bigint()) / 1e6;

function instance(j) {
	return { ip: `198.18.255.${1 + j}`, port: 7000 + j };
}

function register(j, weight) {
	const { ip, port } = instance(j);
	return request(args.write, 'POST', '/nacos/v1/ns/instance?' + new URLSearchParams({
		namespaceId: 'public', serviceName: GROUPED, groupName: 'DEFAULT_GROUP', clusterName: 'DEFAULT',
		ip, port: String(port), weight: String(weight), enable: 'true', healthy: 'true',
		ephemeral: 'true', metadata: '{"app":"perf-push"}' }));
}

let waiting = null; // {j, weight, t0, resolve}
let packets = 0;
let gzipped = 0;

const sock = dgram.createSocket('udp4');
sock.on('message', (msg, rinfo) => {
	const t = nowMs();
	packets++;
	let text;
	try {
		if (msg.length >= 2 && msg[0] === 0x1f && msg[1] === 0x8b) {
			gzipped++;
			text = zlib.gunzipSync(msg).toString();
		} else {
			text = msg.toString();
		}
		const p = JSON.parse(text);
		sock.send(JSON.stringify({ type: p.type === 'dom' ? 'push-ack' : 'unknown-ack',
			lastRefTime: p.lastRefTime, data: '' }), rinfo.port, rinfo.address);
		if (p.type !== 'dom' || !waiting) return;
		const data = JSON.parse(p.data);
		const want = instance(waiting.j);
		const h = (data.hosts || []).find(x => x.ip === want.ip && x.port === want.port);
		if (h && Number(h.weight) === waiting.weight) {
			const w = waiting;
			waiting = null;
			w.resolve(t - w.t0);
		}
	} catch (err) {
		process.stderr.write(`nacos-push: bad packet from ${rinfo.address}:${rinfo.port}: ${err.message}\n`);
	}
});

function subscribe(udpPort) {
	return request(args.sub, 'GET', '/nacos/v1/ns/instance/list?' + new URLSearchParams({
		namespaceId: 'public', serviceName: GROUPED, clusters: '', udpPort: String(udpPort),
		clientIP: '127.0.0.1', healthyOnly: 'false' }));
}

function pct(sorted, p) {
	if (!sorted.length) return NaN;
	return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

async function main() {
	await new Promise(r => sock.bind(0, '127.0.0.1', r));
	const udpPort = sock.address().port;
	// The instances exist before the subscription, so every push lists them all.
	for (let j = 0; j < args.instances; j++) await register(j, 1);
	await subscribe(udpPort);
	const poll = setInterval(() => {
		subscribe(udpPort).catch(err => process.stderr.write(`nacos-push: poll: ${err.message}\n`));
	}, 3000);
	await new Promise(r => setTimeout(r, 200));

	const lat = [];
	let lost = 0;
	for (let k = 0; k < args.n; k++) {
		const j = k % args.instances;
		const weight = 2 + k; // never a weight the instance had
		const got = new Promise(resolve => {
			waiting = { j, weight, t0: nowMs(), resolve };
		});
		await register(j, weight);
		const ms = await Promise.race([got, new Promise(r => setTimeout(() => r(null), 2000))]);
		if (ms === null) {
			waiting = null;
			lost++;
		} else {
			lat.push(ms);
		}
		await new Promise(r => setTimeout(r, args.gapMs * (0.5 + Math.random())));
	}
	clearInterval(poll);
	lat.sort((a, b) => a - b);
	const f = x => (Number.isNaN(x) ? 'nan' : x.toFixed(2));
	process.stdout.write(`PUSH n=${args.n} lost=${lost} p50_ms=${f(pct(lat, 50))} ` +
		`p90_ms=${f(pct(lat, 90))} p99_ms=${f(pct(lat, 99))} max_ms=${f(lat.at(-1) ?? NaN)} ` +
		`gzip=${gzipped} packets=${packets}\n`);
	sock.close();
	agent.destroy();
}

main().catch(err => {
	process.stderr.write(`nacos-push: ${err.message}\n`);
	process.exit(1);
});
