-- wrk script: complete booking conversations on the text API, each conversation's turns
-- strictly in order. A conversation goes back to the ready queue only when the answer to
-- its previous turn has arrived (the answer names the conversation and its turn), so two
-- turns of one conversation are never in flight at once, whatever connection carries them.
local texts = {
  '{"text":"bonjour je voudrais prendre rendez-vous","caller_phone":"+33612345678"}',
  '{"text":"Jean Dupont"}',
  '{"text":"pas de préférence"}',
  '{"text":"le premier"}',
}
local choices = {'{"text":"le premier"}', '{"text":"le deuxième"}', '{"text":"le troisième"}'}
local periods = {"le matin", "l'après-midi"}
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

local ready, head, tail, counter, asks = {}, 1, 0, 0, 0
local prefix = "b"

-- `wrk ... -- PREFIX`: conversation ids start with PREFIX, so two wrk processes (one per
-- replica) never share a conversation.
function init(args)
  if args[1] then prefix = args[1] end
end

function request()
  local conv, step
  if head <= tail then
    conv, step = ready[head].c, ready[head].s
    ready[head] = nil
    head = head + 1
  else
    counter = counter + 1
    conv, step = prefix .. tid .. "_" .. counter, 1
  end
  local body = texts[step]
  if step == 3 then
    -- Callers ask for different days, as a practice's callers do; a shared day would turn
    -- the bench into a booking race (measured separately by the tests).
    asks = asks + 1
    body = '{"text":"le ' .. ((asks * 11) % 28 + 1) .. ' ' .. periods[(asks % 2) + 1] .. '"}'
  end
  if step == 4 then body = choices[(counter % 3) + 1] end
  return wrk.format("POST", "/api/conversations/" .. conv .. "/messages",
                    {["Content-Type"] = "application/json"}, body)
end

function response(status, headers, body)
  local conv = body:match('"conv_id":"([^"]+)"')
  local turn = tonumber(body:match('"turn":(%d+)'))
  if status == 200 and conv and turn and turn < 4 then
    tail = tail + 1
    ready[tail] = {c = conv, s = turn + 1}
  end
end
