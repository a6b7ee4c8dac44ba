# PostgreSQL restarted under load: a private throwaway cluster (never the
# shared one) is stopped (-m fast) and crashed (-m immediate) while
# metrics-loadgen drives the server; 503 while it is down, reconnection by
# itself, no acknowledged update lost. Skipped (77) without the PostgreSQL 15
# binaries, except in CI where that fails.
add_test(NAME fault_pg_restart_pgtest
  COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/pg_restart_test.sh
          --server $<TARGET_FILE:metrics-server> --loadgen $<TARGET_FILE:metrics-loadgen>)
set_tests_properties(fault_pg_restart_pgtest PROPERTIES
  TIMEOUT 240 SKIP_RETURN_CODE 77 LABELS "integration;faults;pg")
