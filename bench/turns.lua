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
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

local ready, head, tail, counter = {}, 1, 0, 0

function request()
  local conv, step
  if head <= tail then
    conv, step = ready[head].c, ready[head].s
    ready[head] = nil
    head = head + 1
  else
    counter = counter + 1
    conv, step = "b" .. tid .. "_" .. counter, 1
  end
  local body = texts[step]
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
