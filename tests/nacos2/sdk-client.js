'use strict';
/*
 * sdk-client.js - one Nacos 2.x gRPC client (the npm binding of
 * nacos-sdk-rust, nacos-sdk-rust-binding-node@0.8.0) in a process of its
 * own, driven by e2e.js over Node's IPC channel.
 *
 * Why a process of its own: the binding's constructor is a synchronous
 * block_on that connects (gRPC connection setup, server check, health
 * check) on Node's main thread, so a server that does not answer would
 * freeze the test's event loop and with it every bounded wait. Here it
 * freezes only this process, which e2e.js kills when its wait runs out.
 *
 * Protocol (messages on the IPC channel):
 *   parent -> child  {id, op, args}         op: a NacosNamingClient method name
 *   child -> parent  {id, ok: true, value} | {id, ok: false, error}
 *   child -> parent  {ready: true} | {ready: false, error}   once, after the constructor
 *   child -> parent  {event: tag, hosts, t}  every call of a subscribe listener
 * subscribe's listener is named by args[3] (a tag), not a function. The
 * process exits when the parent's channel goes (the parent died).
 *
 *   node sdk-client.js MODULES_DIR SERVER_ADDR NAMESPACE
 */
const path = require('path');

const [modules, serverAddr, namespace] = process.argv.slice(2);
const PKG = path.resolve(modules, 'node_modules', 'nacos-sdk-rust-binding-node');

process.on('disconnect', () => process.exit(0));

let client;
try {
	const { NacosNamingClient } = require(PKG);
	client = new NacosNamingClient({
		serverAddr,
		namespace,
		appName: 'distrod-e2e',
		// Off so that a push of an empty (or all-unhealthy) list reaches the
		// listener: with it on (the binding's default) the client drops such
		// pushes, and "the last instance went away" could not be observed.
		namingPushEmptyProtection: false,
	});
	process.send({ ready: true, version: require(path.join(PKG, 'package.json')).version });
} catch (err) {
	process.send({ ready: false, error: String(err && err.message || err) });
}

const OPS = new Set(['registerInstance', 'deregisterInstance', 'batchRegisterInstance',
	'getAllInstances', 'selectInstances', 'selectOneHealthyInstance', 'subscribe']);

process.on('message', async m => {
	if (!client) {
		process.send({ id: m.id, ok: false, error: 'no client (its constructor failed)' });
		return;
	}
	if (!OPS.has(m.op)) {
		process.send({ id: m.id, ok: false, error: `unknown op ${m.op}` });
		return;
	}
	try {
		const args = m.args.slice();
		if (m.op === 'subscribe') {
			const tag = args[3];
			args[3] = (err, hosts) => process.send({ event: tag, err: err ? String(err) : null,
				hosts, t: Date.now() });
		}
		const value = await client[m.op](...args);
		process.send({ id: m.id, ok: true, value: value === undefined ? null : value });
	} catch (err) {
		process.send({ id: m.id, ok: false, error: String(err && err.message || err) });
	}
});
