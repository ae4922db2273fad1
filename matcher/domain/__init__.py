"""What the service talks about: the tables, the API schemas that validate them, the industry taxonomy."""
