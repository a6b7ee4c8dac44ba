-- wrk script: single-metric text updates.
wrk.method = "POST"
wrk.path = "/update/counter/PollCount/1"
