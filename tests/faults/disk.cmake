# A full and a read-only disk under the file storage (a private tmpfs in a
# mount namespace; see the script's header).
add_test(NAME fault_disk_full_test
  COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/disk_full_test.sh
          --server $<TARGET_FILE:metrics-server>)
set_tests_properties(fault_disk_full_test PROPERTIES
  TIMEOUT 180 SKIP_RETURN_CODE 77 LABELS "integration;faults")
