# The fault tests of issue 18 (exactly-once writes) with the clients' keys,
# against the server side (Idempotency-Key recognised and stored with the
# write). Against a server without it the keyed runs fail by design: every
# resend is applied again (mismatches).

# Lost answers and cut connections between metrics-loadgen and the server
# through answer_proxy: without keys requests end in doubt (control); with
# --idempotency-keys none does and the read-back is exact.
add_test(NAME fault_answer_loss_test
  COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/answer_loss_test.sh
          --server $<TARGET_FILE:metrics-server>
          --loadgen $<TARGET_FILE:metrics-loadgen>
          --proxy $<TARGET_FILE:fault_answer_proxy>)
set_tests_properties(fault_answer_loss_test PROPERTIES
  TIMEOUT 120 LABELS "integration;faults")

# kill -9 loop with keys: every round ends with 0 requests in doubt and an
# exact check (requests hit by a kill are resent with their keys).
add_test(NAME fault_kill9_keys_test
  COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/kill9_loop_test.sh
          --server $<TARGET_FILE:metrics-server>
          --loadgen $<TARGET_FILE:metrics-loadgen>
          --rounds 2 --kills 3 --agents 50 --idempotency-keys 1)
set_tests_properties(fault_kill9_keys_test PROPERTIES
  TIMEOUT 180 LABELS "integration;faults")

# PostgreSQL restarts with keys: 0 requests in doubt, an exact check.
add_test(NAME fault_pg_restart_keys_pgtest
  COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/pg_restart_test.sh
          --server $<TARGET_FILE:metrics-server> --loadgen $<TARGET_FILE:metrics-loadgen>
          --idempotency-keys)
set_tests_properties(fault_pg_restart_keys_pgtest PROPERTIES
  TIMEOUT 240 SKIP_RETURN_CODE 77 LABELS "integration;faults;pg")

# The agent's end-to-end test drives the real server through the proxy too
# (E2eAnswerLossTest in src/agent/tests/e2e_server_test.cpp, compiled only
# with this definition).
if(TARGET agent_e2e_test)
  target_compile_definitions(agent_e2e_test PRIVATE
    METRICS_ANSWER_PROXY_BIN="$<TARGET_FILE:fault_answer_proxy>")
  add_dependencies(agent_e2e_test fault_answer_proxy)
endif()
