-- wrk script: refresh_token rotation chains. Starts from the space-separated tokens in
-- BENCH_REFRESH_TOKENS (one family each, at least as many as connections); every request
-- spends one token and every 200 response puts its successor back, so each request is a
-- first use (conditional update, successor insert, lookups, two signatures): real rotation,
-- not the reuse-window repeat.
local queue = {}
for t in string.gmatch(os.getenv("BENCH_REFRESH_TOKENS") or "", "%S+") do
  table.insert(queue, t)
end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic " .. os.getenv("BENCH_BASIC")

request = function()
  local token = table.remove(queue, 1) or "exhausted"
  return wrk.format(nil, nil, nil, "grant_type=refresh_token&refresh_token=" .. token)
end

response = function(status, headers, body)
  if status == 200 then
    local next_token = string.match(body, '"refresh_token":"([^"]+)"')
    if next_token then
      table.insert(queue, next_token)
    end
  end
end
