-- wrk script: the same JSON body size as a caller turn, to the bare echo endpoint.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"text":"bonjour je voudrais prendre rendez-vous","caller_phone":"+33612345678"}'
