# kill -9 under load in synchronous file mode: 3 rounds, 4 kills each while 50
# agents write, every acknowledged update must survive (kill9_loop_test.sh).
# The long loop is the same script with more rounds, e.g.
#   --rounds 100 --kills 8 --results /tmp/kill9.txt
add_test(NAME fault_kill9_loop_test
  COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/kill9_loop_test.sh
          --server $<TARGET_FILE:metrics-server>
          --loadgen $<TARGET_FILE:metrics-loadgen>
          --rounds 3 --kills 4 --agents 50)
set_tests_properties(fault_kill9_loop_test PROPERTIES
  TIMEOUT 240 LABELS "integration;faults")
