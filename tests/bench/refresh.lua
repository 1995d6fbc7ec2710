-- wrk script: the refresh_token grant with HTTP Basic. The same token within the reuse window
-- exercises the full rotation transaction (conditional update, successor insert, lookups) and
-- signs a new access token and refresh token each time.
local id = os.getenv("BENCH_CLIENT_ID")
local secret = os.getenv("BENCH_CLIENT_SECRET")
wrk.method = "POST"
wrk.body = "grant_type=refresh_token&refresh_token=" .. os.getenv("BENCH_REFRESH_TOKEN")
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic " .. os.getenv("BENCH_BASIC")
