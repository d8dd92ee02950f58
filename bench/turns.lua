-- wrk script: patients who book an appointment on the text API and then cancel it, each
-- followed to the end of both conversations, so the calendar frees what it books and the
-- run measures a steady state (the fill stays where it started, whatever the run's length).
--
-- Each conversation's turns are strictly in order: a conversation goes back to the ready
-- queue only when the answer to its previous turn has arrived (the answer names the
-- conversation, its turn and its state), so two turns of one conversation are never in
-- flight at once, whatever connection carries them. The next text is chosen from the
-- state the answer names, as a caller answers what was asked: a lost race (the slot taken
-- meanwhile, new proposals) is answered again instead of abandoned with proposals held.
--
-- Every patient has a phone number of its own (the cancellation finds the appointment by
-- the caller's number), and `wrk ... -- PREFIX BASE` keeps two wrk processes (one per
-- replica) apart: conversation ids start with PREFIX, numbers count from BASE.
local choices = {'{"text":"le premier"}', '{"text":"le deuxième"}', '{"text":"le troisième"}'}
local periods = {"le matin", "l'après-midi"}
local BY_STATE = {
  QUALIF_NAME = '{"text":"Jean Dupont"}',
  CANCEL_CONFIRM = '{"text":"oui"}',
  MODIFY_CONFIRM = '{"text":"non"}',
}
local MAX_TURNS = 12  -- a conversation still open after this many turns is given up (counted)

local threads = {}
local count = 0

function setup(thread)
  count = count + 1
  thread:set("tid", count)
  table.insert(threads, thread)
end

local ready, head, tail, counter, asks = {}, 1, 0, 0, 0
local pending = {}                 -- conv id -> {phone, kind}
ended, given_up, cancelled, confirmed, refused = 0, 0, 0, 0, 0
local prefix, base = "b", 0

function init(args)
  if args[1] then prefix = args[1] end
  if args[2] then base = tonumber(args[2]) end
end

local function preference()
  -- Callers ask for different days, as a practice's callers do; a shared day would turn
  -- the bench into a booking race (measured separately by the tests).
  asks = asks + 1
  return '{"text":"le ' .. ((asks * 11) % 28 + 1) .. ' ' .. periods[(asks % 2) + 1] .. '"}'
end

function request()
  local conv, body
  if head <= tail then
    local item = ready[head]
    ready[head] = nil
    head = head + 1
    conv, body = item.c, item.b
  else
    counter = counter + 1
    -- +33 61 00 00 00 00 onwards: valid French mobiles (as bench/client.py's phone_number)
    local phone = string.format("+336%08d", 10000000 + base + tid * 100000 + counter)
    conv = prefix .. tid .. "_" .. counter
    pending[conv] = {p = phone, k = "book"}
    body = '{"text":"bonjour je voudrais prendre rendez-vous","caller_phone":"' .. phone .. '"}'
  end
  return wrk.format("POST", "/api/conversations/" .. conv .. "/messages",
                    {["Content-Type"] = "application/json"}, body)
end

local function queue(conv, body)
  tail = tail + 1
  ready[tail] = {c = conv, b = body}
end

function response(status, headers, body)
  local conv = body:match('"conv_id":"([^"]+)"')
  local info = conv and pending[conv]
  if status ~= 200 or not info then
    refused = refused + 1
    return
  end
  local turn = tonumber(body:match('"turn":(%d+)'))
  local state = body:match('"state":"([^"]+)"')
  if body:find('"ended":true', 1, true) then
    ended = ended + 1
    pending[conv] = nil
    if state == "CONFIRMED" and info.k == "book" then
      -- The same patient calls back and cancels: what was booked is free again.
      confirmed = confirmed + 1
      local again = conv .. "c"
      pending[again] = {p = info.p, k = "cancel"}
      queue(again, '{"text":"bonjour je voudrais annuler mon rendez-vous","caller_phone":"' .. info.p .. '"}')
    elseif state == "CANCELLED" then
      cancelled = cancelled + 1
    end
    return
  end
  if turn >= MAX_TURNS then
    given_up = given_up + 1
    pending[conv] = nil
    return
  end
  local text = BY_STATE[state]
  if state == "QUALIF_PREF" then
    text = preference()
  elseif state == "WAIT_CONFIRM" then
    text = choices[(counter + turn) % 3 + 1]
  elseif text == nil then
    text = '{"text":"je voudrais prendre rendez-vous"}'
  end
  queue(conv, text)
end

function done(summary, latency, requests)
  local t = {ended = 0, given_up = 0, cancelled = 0, confirmed = 0, refused = 0, open = 0}
  for _, thread in ipairs(threads) do
    t.ended = t.ended + thread:get("ended")
    t.given_up = t.given_up + thread:get("given_up")
    t.cancelled = t.cancelled + thread:get("cancelled")
    t.confirmed = t.confirmed + thread:get("confirmed")
    t.refused = t.refused + thread:get("refused")
  end
  io.write(string.format("conversations: ended %d given_up %d confirmed %d cancelled %d refused %d\n",
                         t.ended, t.given_up, t.confirmed, t.cancelled, t.refused))
end
