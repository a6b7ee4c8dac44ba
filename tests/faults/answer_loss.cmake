# answer_proxy: a loopback HTTP proxy that cuts writes, swallows their
# answers after the server applied them, and cuts answers halfway
# (answer_proxy.cpp); used by the tests of idempotency_keys.cmake.
add_executable(fault_answer_proxy ${CMAKE_CURRENT_SOURCE_DIR}/answer_proxy.cpp)
target_link_libraries(fault_answer_proxy PRIVATE Threads::Threads)
