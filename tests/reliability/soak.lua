-- wrk script for the soak: a mix of what a busy IdP serves, paced by SOAK_DELAY_MS per
-- connection. client_credentials tokens; a wrong secret (a failure counted per address);
-- unknown client ids (a cache miss each, never cached); /jwks.json; discovery; an
-- unauthenticated /authorize with a fresh state (a sealed page, no server state).
local id = os.getenv("SOAK_CLIENT_ID")
local basic = os.getenv("SOAK_BASIC")
local bad = os.getenv("SOAK_BAD_BASIC")
local auth = os.getenv("SOAK_AUTHORIZE")
local pace = tonumber(os.getenv("SOAK_DELAY_MS") or "5")
local n = 0
local form = { ["Content-Type"] = "application/x-www-form-urlencoded" }

function delay()
  return pace
end

function request()
  n = n + 1
  local k = n % 10
  if k < 5 then
    local h = { ["Content-Type"] = form["Content-Type"], ["Authorization"] = "Basic " .. basic }
    return wrk.format("POST", "/token", h, "grant_type=client_credentials")
  elseif k == 5 then
    local h = { ["Content-Type"] = form["Content-Type"], ["Authorization"] = "Basic " .. bad }
    return wrk.format("POST", "/token", h, "grant_type=client_credentials")
  elseif k == 6 then
    return wrk.format("POST", "/token", form,
      "grant_type=client_credentials&client_id=svc_unknown" .. n .. "&client_secret=x")
  elseif k == 7 then
    return wrk.format("GET", "/jwks.json")
  elseif k == 8 then
    return wrk.format("GET", "/.well-known/openid-configuration")
  else
    return wrk.format("GET", auth .. "&state=s" .. n)
  end
end
