-- post.lua: wrk script that POSTs a Qase delivery (the run.completed fixture).
--
-- Settings come from the environment (wrk passes no arguments to setup):
--   BENCH_BODY       path of the JSON body to send (required), read once per
--                    thread at start-up
--   BENCH_PATH       request path (default /webhooks/qase)
--   BENCH_MODE       dup      : every request sends the identical body
--                    distinct : payload.id is unique per request across all
--                               threads (base + n * threads + thread index)
--   BENCH_ID_BASE    first payload.id in distinct mode (default 1000000); give
--                    each run its own range so a store never sees a repeat
--   BENCH_THREADS    the -t given to wrk (default 2): the stride of the ids and
--                    the share of BENCH_RATE each thread paces to
--   BENCH_RATE       when set: pace to this many requests/s in total (open loop
--                    per thread: request k of a thread is not sent before
--                    start + k / (BENCH_RATE / BENCH_THREADS))
--   BENCH_MAX        when set: each thread stops after BENCH_MAX / BENCH_THREADS
--                    responses (used to fill the store with a fixed count)
--
--   wrk -t2 -c32 -d10s --latency -s bench/post.lua http://127.0.0.1:PORT

local body_path = os.getenv("BENCH_BODY")
local path = os.getenv("BENCH_PATH") or "/webhooks/qase"
local mode = os.getenv("BENCH_MODE") or "dup"
local id_base = tonumber(os.getenv("BENCH_ID_BASE") or "1000000")
local nthreads = tonumber(os.getenv("BENCH_THREADS") or "2")
local rate = tonumber(os.getenv("BENCH_RATE") or "")
local max_total = tonumber(os.getenv("BENCH_MAX") or "")

local function read_file(p)
   if not p then
      error("BENCH_BODY is not set (path of the JSON body to POST)")
   end
   local f = assert(io.open(p, "rb"))
   local s = f:read("*a")
   f:close()
   return s
end

local raw = read_file(body_path)
local headers = { ["Content-Type"] = "application/json" }

-- Distinct mode: split the body around the number of payload.id, so each
-- request is prefix .. id .. suffix.  Qase's payload object carries the run
-- id as "id"; the pattern takes the first "id" after "payload".
local prefix, suffix
do
   local p0 = raw:find('"payload"%s*:%s*{')
   if not p0 then error("body has no payload object") end
   local s, e = raw:find('"id"%s*:%s*%-?%d+', p0)
   if not s then error("body has no payload.id number") end
   local num_s = raw:find('%-?%d+', s + 4)
   prefix = raw:sub(1, num_s - 1)
   suffix = raw:sub(e + 1)
end

-- setup() runs in the main Lua state once per thread before it starts: it
-- hands each thread its index, from which its id range follows.
local next_index = 0
function setup(thread)
   thread:set("tindex", next_index)
   next_index = next_index + 1
end

-- Per-thread state (each wrk thread has its own Lua state).
tindex = 0
local n = 0            -- requests built by this thread
local fixed_req = nil

function init(args)
   if mode == "dup" then
      fixed_req = wrk.format("POST", path, headers, raw)
   end
end

function request()
   if fixed_req then
      return fixed_req
   end
   local id = id_base + n * nthreads + tindex
   n = n + 1
   return wrk.format("POST", path, headers,
                     prefix .. string.format("%d", id) .. suffix)
end

if rate and rate > 0 then
   -- Pacing with a wall clock (LuaJIT's ffi; wrk has none of its own).
   local ffi = require("ffi")
   ffi.cdef [[
      struct bench_timespec { long tv_sec; long tv_nsec; };
      int clock_gettime(int clk, struct bench_timespec *ts);
   ]]
   local ts = ffi.new("struct bench_timespec")
   local function now_ms()
      ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
      return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
   end
   local per_thread = rate / nthreads
   local start = nil
   local slot = 0
   -- Called before each request of any connection of this thread: claims
   -- the thread's next send slot and waits until it comes.
   function delay()
      local t = now_ms()
      if not start then start = t end
      local due = start + slot * 1000 / per_thread
      slot = slot + 1
      local d = due - t
      if d < 0 then return 0 end
      return math.floor(d)
   end
end

if max_total and max_total > 0 then
   local quota = math.ceil(max_total / nthreads)
   local got = 0
   function response(status, hdrs, body)
      got = got + 1
      if got >= quota then
         wrk.thread:stop()
      end
   end
end
