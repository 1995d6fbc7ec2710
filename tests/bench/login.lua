-- wrk script: POST the login form again and again with a wrong password (each costs one bcrypt
-- verification, like a real attempt). Form fields and cookie come from the environment.
wrk.method = "POST"
wrk.body = "authz=" .. os.getenv("BENCH_AUTHZ") .. "&csrf=" .. os.getenv("BENCH_CSRF")
  .. "&username=bench&password=not-the-password"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Cookie"] = os.getenv("BENCH_COOKIE")
