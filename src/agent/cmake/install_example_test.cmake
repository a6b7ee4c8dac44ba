# ctest -R agent_install_example: installs the agent component into a
# temporary prefix, builds examples/link-agent against it with CMake
# (find_package) and with pkg-config, and runs both as a user would: with no
# LD_LIBRARY_PATH, so the library must be found through the rpath.
#   -DBINARY_DIR=<project build dir> -DEXAMPLE_DIR=<examples/link-agent>
#   -DWORK_DIR=<scratch dir> [-DSANITIZE=<flags>]
#   [-DGENERATOR=<the project's CMake generator>] [-DCXX_COMPILER=<c++>]
# The consumer is configured with the project's own generator: CMake's
# default (Unix Makefiles) needs make, which the project does not install.
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
set(generator "")
if(GENERATOR)
  set(generator -G ${GENERATOR})
endif()
if(NOT CXX_COMPILER)
  set(CXX_COMPILER c++)
endif()
run(${CMAKE_COMMAND} -S ${EXAMPLE_DIR} -B ${WORK_DIR}/build ${generator}
  -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_CXX_COMPILER=${CXX_COMPILER}
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
if(NOT last_output MATCHES "-Wl,-rpath,")
  message(FATAL_ERROR "metrics-agent.pc gives no rpath: ${last_output}")
endif()
separate_arguments(extra UNIX_COMMAND "${flags}")
run(${CXX_COMPILER} -std=c++20 ${extra} ${EXAMPLE_DIR}/main.cpp ${pc_flags}
  -o ${WORK_DIR}/link-agent-pc)
# No LD_LIBRARY_PATH: the consumer finds libmetrics-agent.so.1 by the rpath
# that the .pc file gave it, or does not start.
run(${CMAKE_COMMAND} -E env --unset=LD_LIBRARY_PATH ${WORK_DIR}/link-agent-pc)
message(STATUS "pkg-config build: ${last_output}")
if(NOT last_output MATCHES "agent ok")
  message(FATAL_ERROR "unexpected output: ${last_output}")
endif()
