"""The auth domain: who is calling and what they may do. No FastAPI here (`app.api.access` and
`app.api.deps` turn it into dependencies); it may use the user store (`app.db`).

* `current`: who a token is now: the one user loader and the one "still current" check.
* `service`: login, refresh-token rotation, logout, password changes, user administration.
* `tokens`: API tokens (`lxa_...`) for scripts and CI: create, list, revoke.
* `access`: the role rules, per project, and `require()`, the one role check (pure).
* `policy`: the operator policy (pure); `policy_checks`: the policy applied to a request (it
  reads what a write names from LXD).
* `errors`: the auth errors (401, 403, 429...), each with its status and code.
"""
