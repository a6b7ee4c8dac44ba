# ctest -R agent_install_example: installs the agent component into a
# temporary prefix, builds examples/link-agent against it with CMake
# (find_package) and with pkg-config, and runs both.
#   -DBINARY_DIR=<project build dir> -DEXAMPLE_DIR=<examples/link-agent>
#   -DWORK_DIR=<scratch dir> [-DSANITIZE=<flags>]
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
  set(last_output "${out}" PARENT_SCOPE)
endfunction()

file(REMOVE_RECURSE ${WORK_DIR})
set(prefix ${WORK_DIR}/prefix)
run(${CMAKE_COMMAND} --install ${BINARY_DIR} --prefix ${prefix} --component agent)

set(flags "")
if(SANITIZE)
  set(flags "-fsanitize=${SANITIZE}")
endif()
run(${CMAKE_COMMAND} -S ${EXAMPLE_DIR} -B ${WORK_DIR}/build -DCMAKE_PREFIX_PATH=${prefix}
  "-DCMAKE_CXX_FLAGS=${flags}" "-DCMAKE_EXE_LINKER_FLAGS=${flags}")
run(${CMAKE_COMMAND} --build ${WORK_DIR}/build)
run(${WORK_DIR}/build/link-agent)
message(STATUS "find_package build: ${last_output}")
if(NOT last_output MATCHES "agent ok")
  message(FATAL_ERROR "unexpected output: ${last_output}")
endif()

file(GLOB_RECURSE pc_files ${prefix}/*/metrics-agent.pc)
list(GET pc_files 0 pc_file)
get_filename_component(pc_dir ${pc_file} DIRECTORY)
run(${CMAKE_COMMAND} -E env PKG_CONFIG_PATH=${pc_dir} pkg-config --cflags --libs metrics-agent)
string(STRIP "${last_output}" pc_flags)
separate_arguments(pc_flags UNIX_COMMAND "${pc_flags}")
string(REGEX MATCH "-L([^ ;]+)" _ "${last_output}")
set(libdir ${CMAKE_MATCH_1})
separate_arguments(extra UNIX_COMMAND "${flags}")
run(c++ -std=c++20 ${extra} ${EXAMPLE_DIR}/main.cpp ${pc_flags} -o ${WORK_DIR}/link-agent-pc)
run(${CMAKE_COMMAND} -E env LD_LIBRARY_PATH=${libdir} ${WORK_DIR}/link-agent-pc)
message(STATUS "pkg-config build: ${last_output}")
if(NOT last_output MATCHES "agent ok")
  message(FATAL_ERROR "unexpected output: ${last_output}")
endif()
