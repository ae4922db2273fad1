"""People who sign in to the workbench: accounts per tenant with hashed passwords, lockout, and sessions.

API keys (matcher/store/keys.py) stay the credential of machines; an account is a person's, with the role
admin or officer that domain/permissions.py already knows."""
