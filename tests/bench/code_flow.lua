-- wrk script: the authorization-code flow of a signed-in user, without bcrypt: a prompt-less
-- GET /authorize with the session cookie (BENCH_COOKIE) answers 303 with a code, and the code is
-- exchanged at POST /token (client BENCH_WEB_BASIC, PKCE verifier BENCH_VERIFIER for the challenge in
-- BENCH_AUTHORIZE). Each connection alternates; codes go into one queue, so every code is
-- redeemed once. `done` prints the completed flows (token responses with status 200).
local codes = {}
flows = 0 -- global: `done` reads it from each thread
local threads = {}

setup = function(thread)
  table.insert(threads, thread)
end
local authorize = os.getenv("BENCH_AUTHORIZE")
local cookie = os.getenv("BENCH_COOKIE")
local token_body = "grant_type=authorization_code&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&code_verifier="
  .. os.getenv("BENCH_VERIFIER") .. "&code="
local token_headers = {
  ["Content-Type"] = "application/x-www-form-urlencoded",
  ["Authorization"] = "Basic " .. os.getenv("BENCH_WEB_BASIC"),
}
local authorize_headers = { ["Cookie"] = cookie }

request = function()
  local code = table.remove(codes, 1)
  if code then
    return wrk.format("POST", "/token", token_headers, token_body .. code)
  end
  return wrk.format("GET", authorize, authorize_headers, nil)
end

response = function(status, headers, body)
  if status == 303 then
    local location = headers["Location"] or headers["location"] or ""
    local code = string.match(location, "[?&]code=([^&]+)")
    if code then
      table.insert(codes, code)
    end
  elseif status == 200 and string.find(body, '"access_token"', 1, true) then
    flows = flows + 1
  end
end

done = function(summary, latency, requests)
  local total = 0
  for _, t in ipairs(threads) do
    total = total + (t:get("flows") or 0)
  end
  io.write(string.format("flows %d\n", total))
end
