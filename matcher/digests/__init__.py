"""Weekly recommendation emails: selection (compose), templates (render), delivery (send), exactly-once runs."""
