-- wrk script for bench/webhooks.py: every request is a new Example Ads delivery, signed
-- as the platform signs it: X-Example-Signature: sha256=<hex HMAC-SHA256 of
-- "<timestamp>.<body>">, X-Example-Timestamp: <unix seconds>.
-- usage: wrk -s bench/webhooks.lua URL -- <secret> [<run id>]
-- SHA-256 and HMAC in plain LuaJIT (wrk's Lua has no crypto library).

local bit = require("bit")
local band, bor, bxor, bnot = bit.band, bit.bor, bit.bxor, bit.bnot
local rshift, lshift, ror, tobit, tohex = bit.rshift, bit.lshift, bit.ror, bit.tobit, bit.tohex
local byte, char, rep, format = string.byte, string.char, string.rep, string.format

local K = {
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
}

local function be64(n)
  local s = ""
  for _ = 1, 8 do
    local r = n % 256
    s = char(r) .. s
    n = (n - r) / 256
  end
  return s
end

local W = {}
local function block(msg, i, H)
  for j = 1, 16 do
    local p = i + (j - 1) * 4
    local a, b, c, d = byte(msg, p, p + 3)
    W[j] = bor(lshift(a, 24), lshift(b, 16), lshift(c, 8), d)
  end
  for j = 17, 64 do
    local v, u = W[j - 15], W[j - 2]
    local s0 = bxor(ror(v, 7), ror(v, 18), rshift(v, 3))
    local s1 = bxor(ror(u, 17), ror(u, 19), rshift(u, 10))
    W[j] = tobit(W[j - 16] + s0 + W[j - 7] + s1)
  end
  local a, b, c, d, e, f, g, h = H[1], H[2], H[3], H[4], H[5], H[6], H[7], H[8]
  for j = 1, 64 do
    local S1 = bxor(ror(e, 6), ror(e, 11), ror(e, 25))
    local ch = bxor(band(e, f), band(bnot(e), g))
    local t1 = tobit(h + S1 + ch + K[j] + W[j])
    local S0 = bxor(ror(a, 2), ror(a, 13), ror(a, 22))
    local maj = bxor(band(a, b), band(a, c), band(b, c))
    local t2 = tobit(S0 + maj)
    h, g, f, e, d, c, b, a = g, f, e, tobit(d + t1), c, b, a, tobit(t1 + t2)
  end
  H[1], H[2], H[3], H[4] = tobit(H[1] + a), tobit(H[2] + b), tobit(H[3] + c), tobit(H[4] + d)
  H[5], H[6], H[7], H[8] = tobit(H[5] + e), tobit(H[6] + f), tobit(H[7] + g), tobit(H[8] + h)
end

local function sha256(msg)
  local len = #msg
  msg = msg .. "\128" .. rep("\0", (55 - len) % 64) .. be64(8 * len)
  local H = {
    tobit(0x6a09e667), tobit(0xbb67ae85), tobit(0x3c6ef372), tobit(0xa54ff53a),
    tobit(0x510e527f), tobit(0x9b05688c), tobit(0x1f83d9ab), tobit(0x5be0cd19),
  }
  for i = 1, #msg, 64 do
    block(msg, i, H)
  end
  return H
end

local function raw(H)
  local out = {}
  for i = 1, 8 do
    local h = H[i]
    out[i] = char(band(rshift(h, 24), 255), band(rshift(h, 16), 255), band(rshift(h, 8), 255), band(h, 255))
  end
  return table.concat(out)
end

local function hex(H)
  local out = {}
  for i = 1, 8 do
    out[i] = tohex(H[i], 8)
  end
  return table.concat(out)
end

local ipad, opad
local function set_key(key)
  if #key > 64 then
    key = raw(sha256(key))
  end
  key = key .. rep("\0", 64 - #key)
  local i, o = {}, {}
  for n = 1, 64 do
    local k = byte(key, n)
    i[n] = char(bxor(k, 0x36))
    o[n] = char(bxor(k, 0x5c))
  end
  ipad, opad = table.concat(i), table.concat(o)
end

local function hmac_hex(msg)
  return hex(sha256(opad .. raw(sha256(ipad .. msg))))
end

-- threads ------------------------------------------------------------------------------
local threads = {}
local next_thread = 0

function setup(thread)
  next_thread = next_thread + 1
  thread:set("tid", next_thread)
  table.insert(threads, thread)
end

local counter = 0
local run_id = "r"

function init(args)
  set_key(args[1] or "bench-secret")
  run_id = args[2] or "r"
end

function request()
  counter = counter + 1
  local body = format(
    '{"id":"%s-%d-%d","type":"campaign.updated","account_id":"act_1000","object_id":"cmp_%d",'
      .. '"occurred_at":"2026-11-01T10:00:00+00:00"}',
    run_id, tid, counter, counter % 50
  )
  local ts = tostring(os.time())
  return wrk.format("POST", nil, {
    ["Content-Type"] = "application/json",
    ["X-Example-Timestamp"] = ts,
    ["X-Example-Signature"] = "sha256=" .. hmac_hex(ts .. "." .. body),
  }, body)
end

function done(summary, latency, requests)
  io.write(format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"non2xx":%d,"connect_errors":%d,'
      .. '"read_errors":%d,"timeouts":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, summary.errors.status, summary.errors.connect,
    summary.errors.read, summary.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max
  ))
end
