-- wrk script: one webhook event per request, with fresh UUIDs. EVENT is set by webhook_bench.py through
-- the environment: baseline | NEW_CONVERSATION | NEW_MESSAGE | CLOSE_CONVERSATION.
local event = os.getenv("EVENT")
local pool = tonumber(os.getenv("MESSAGE_POOL") or "1000")
local close_per_thread = tonumber(os.getenv("CLOSE_PER_THREAD") or "100000")
-- Each round of the benchmark closes conversations no earlier round has closed.
local close_offset = tonumber(os.getenv("CLOSE_OFFSET") or "0")
local threads = {}
local next_id = 0

function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(os.time() * 1000 + tid * 7919)
  closed = close_offset
end

local function uuid4()
  local id = string.gsub("xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx", "[xy]", function(c)
    local v = (c == "x") and math.random(0, 15) or math.random(8, 11)
    return string.format("%x", v)
  end)
  return id
end

-- Conversations created by the benchmark before the run have ids made from an integer.
local function numbered(prefix, n)
  return string.format("%s-0000-4000-8000-%012d", prefix, n)
end

local headers = { ["Content-Type"] = "application/json" }
local stamp = '"timestamp": "2025-06-04T14:20:00Z"'

request = function()
  local body
  if event == "NEW_CONVERSATION" or event == "baseline" then
    body = '{"type": "NEW_CONVERSATION", ' .. stamp .. ', "data": {"id": "' .. uuid4() .. '"}}'
  elseif event == "NEW_MESSAGE" then
    local conversation = numbered("aaaaaaaa", math.random(0, pool - 1))
    body = '{"type": "NEW_MESSAGE", ' .. stamp .. ', "data": {"id": "' .. uuid4()
      .. '", "content": "Olá, quero alugar um apartamento.", "conversation_id": "' .. conversation .. '"}}'
  else
    local conversation = numbered("cccccccc", tid * close_per_thread + closed)
    closed = closed + 1
    body = '{"type": "CLOSE_CONVERSATION", ' .. stamp .. ', "data": {"id": "' .. conversation .. '"}}'
  end
  return wrk.format("POST", nil, headers, body)
end
