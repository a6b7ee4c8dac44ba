# Warning flags and sanitizer switches, kept in one place for every target.
add_library(metrics_options INTERFACE)
add_library(metrics::options ALIAS metrics_options)
target_compile_features(metrics_options INTERFACE cxx_std_20)
target_compile_options(metrics_options INTERFACE
  -Wall -Wextra -Wpedantic -Wconversion -Wsign-conversion -Wshadow
  -Wnon-virtual-dtor -Wold-style-cast -Wcast-align -Woverloaded-virtual
  -Wimplicit-fallthrough
  $<$<BOOL:${METRICS_WERROR}>:-Werror>)

set(METRICS_SANITIZE "" CACHE STRING "Sanitizers to build with: empty, 'address,undefined' or 'thread'")
if(METRICS_SANITIZE)
  add_compile_options(-fsanitize=${METRICS_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=${METRICS_SANITIZE})
  if(METRICS_SANITIZE MATCHES "thread")
    # GCC warns that TSan cannot model std::atomic_thread_fence, which Asio
    # uses; TSan still checks everything else, so the warning must not stop
    # the -Werror build.
    add_compile_options(-Wno-tsan)
  endif()
endif()
