-- perf/nacos.lua - the requests of perf/nacos, for wrk (LuaJIT).
--
-- The same script drives both servers (nginx answering a fixed 200 "ok",
-- and distrod's Nacos API), so the client's cost per request is the same on
-- both sides. Requests are shaped as the npm nacos-naming client sends them
-- (every parameter in the query, Content-Length: 0, its headers).
--
-- Environment:
--   WRK_MODE     beat      PUT /nacos/v1/ns/instance/beat?beat=<JSON>, cycling
--                          over WRK_N instances (WRK_SERVICES services)
--                register  POST /nacos/v1/ns/instance; WRK_N > 0: cycling over
--                          the same WRK_N instances as beat (to create them);
--                          WRK_N = 0: a new instance on every request
--                list      GET /nacos/v1/ns/instance/list of WRK_SERVICE
--   WRK_N, WRK_SERVICES, WRK_SERVICE, WRK_THREADS (wrk's -t, to split the
--   distinct register instances between threads), WRK_BASE (the first
--   distinct register instance: each run starts past the previous one's)
--   WRK_RATE     0: closed loop (default). > 0: paced at WRK_RATE requests/s
--                in all (see delay() below)
--
-- Instance addresses: 198.18.0.0/15 (benchmark range), ports from 1024 up;
-- nothing connects to them.
--
-- done() prints one line for perf/nacos to read:
--   RESULT requests=N duration_us=D rps=R p50_us=.. p90_us=.. p99_us=.. max_us=..
--          errors_connect=.. errors_read=.. errors_write=.. errors_status=.. errors_timeout=..

local mode = os.getenv("WRK_MODE") or "list"
local n = tonumber(os.getenv("WRK_N") or "10000")
local services = tonumber(os.getenv("WRK_SERVICES") or "100")
local list_service = os.getenv("WRK_SERVICE") or "perf-list"
local nthreads = tonumber(os.getenv("WRK_THREADS") or "1")
local rate = tonumber(os.getenv("WRK_RATE") or "0")
local base = tonumber(os.getenv("WRK_BASE") or "0")

local headers = {
	["User-Agent"] = "Nacos-Java-Client:v1.0.0",
	["Client-Version"] = "Nacos-Java-Client:v1.0.0",
	["Request-Module"] = "Naming",
	["Accept-Encoding"] = "gzip,deflate,sdch",
	["Connection"] = "Keep-Alive",
}

local function urlencode(s)
	return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

-- Instance i (0-based): an address in 198.18.0.0/15 and a port.
local function addr(i)
	local j = i % 131072
	return string.format("198.%d.%d.%d", 18 + math.floor(j / 65536), math.floor(j / 256) % 256, j % 256),
		1024 + math.floor(i / 131072)
end

local function beat_request(i)
	local ip, port = addr(i)
	local svc = "DEFAULT_GROUP@@perf-beat-" .. (i % services)
	local beat = string.format('{"serviceName":"%s","ip":"%s","port":%d,"cluster":"DEFAULT",' ..
		'"weight":1,"metadata":{"app":"perf","zone":"z%d"},"scheduled":true}', svc, ip, port, i % 4)
	local h = { ["Content-Length"] = "0" }
	for k, v in pairs(headers) do h[k] = v end
	return wrk.format("PUT", "/nacos/v1/ns/instance/beat?beat=" .. urlencode(beat) ..
		"&namespaceId=public&serviceName=" .. urlencode(svc), h)
end

local function register_request(i, prefix)
	local ip, port = addr(i)
	local svc = "DEFAULT_GROUP@@" .. prefix .. (i % services)
	local h = { ["Content-Length"] = "0" }
	for k, v in pairs(headers) do h[k] = v end
	return wrk.format("POST", "/nacos/v1/ns/instance?namespaceId=public&serviceName=" ..
		urlencode(svc) .. "&groupName=DEFAULT_GROUP&clusterName=DEFAULT&ip=" .. ip ..
		"&port=" .. port .. "&weight=1&enable=true&healthy=true&ephemeral=true&metadata=" ..
		urlencode('{"app":"perf","zone":"z' .. (i % 4) .. '"}'), h)
end

-- Threads: setup() runs in wrk's main Lua state once per thread, before
-- that thread's init(); it numbers them.
local next_tid = 0
function setup(thread)
	thread:set("tid", next_tid)
	next_tid = next_tid + 1
end

local reqs, nreq, k = nil, 0, 0

function init(args)
	tid = tid or 0
	if mode == "beat" or (mode == "register" and n > 0) then
		-- Precomputed: this thread's share of the cycle, starting at its own offset.
		reqs = {}
		for i = tid, n - 1, nthreads do
			nreq = nreq + 1
			reqs[nreq] = mode == "beat" and beat_request(i) or register_request(i, "perf-beat-")
		end
	end
end

if mode == "list" then
	-- Static: wrk sends this same request without calling Lua per request.
	wrk.method = "GET"
	wrk.path = "/nacos/v1/ns/instance/list?namespaceId=public&serviceName=" ..
		urlencode("DEFAULT_GROUP@@" .. list_service) .. "&clusters=&healthyOnly=false"
	wrk.headers = headers
elseif mode == "register" and n == 0 then
	-- A new instance on every request: thread tid takes i = tid, tid + threads, ...
	request = function()
		local i = base + k * nthreads + tid
		k = k + 1
		return register_request(i, "perf-reg-")
	end
else
	request = function()
		k = k % nreq + 1
		return reqs[k]
	end
end

-- Pacing (WRK_RATE > 0). wrk has no rate limit (wrk2 is not in Debian), but
-- it calls delay() before each request of a connection that is ready to
-- send and waits that many ms. Each thread keeps one schedule of slots
-- nthreads / WRK_RATE s apart and gives each request the next free slot
-- (a slot already past is taken at once), so the thread sends at its share
-- of WRK_RATE whenever a connection is free. The wait is whole ms, so a
-- request may go out up to 1 ms before its slot (bunches within a ms).
-- Latency is wrk's, from the actual send: a request delayed because every
-- connection was busy is not charged for that wait, so this is open loop
-- only while connections are free (at half of the peak, with sub-ms
-- answers, a few of the 50 are in flight at a time).
if rate > 0 then
	local ffi = require("ffi")
	ffi.cdef [[
		struct perf_timespec { long tv_sec; long tv_nsec; };
		int clock_gettime(int clk, struct perf_timespec *ts);
	]]
	local ts = ffi.new("struct perf_timespec")
	local function now_ms()
		ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
		return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
	end
	local gap_ms = 1000 * nthreads / rate
	local slot = nil -- the last slot given
	function delay()
		local now = now_ms()
		local nxt = (slot or now) + gap_ms
		if nxt < now then
			nxt = now -- behind: no catching up in a burst
		end
		slot = nxt
		return math.floor(nxt - now)
	end
end

function done(summary, latency, requests)
	local e = summary.errors
	io.write(string.format("RESULT requests=%d duration_us=%d rps=%.1f p50_us=%.1f p90_us=%.1f " ..
		"p99_us=%.1f max_us=%.1f errors_connect=%d errors_read=%d errors_write=%d errors_status=%d " ..
		"errors_timeout=%d\n", summary.requests, summary.duration,
		summary.requests / (summary.duration / 1e6), latency:percentile(50), latency:percentile(90),
		latency:percentile(99), latency.max, e.connect, e.read, e.write, e.status, e.timeout))
end
