# SPDX-License-Identifier: Apache-2.0
# cmake -P script: [install zss into WORK/prefix], configure + build + run the consumer.
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK})

function(run)
  execute_process(COMMAND ${ARGV} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "command failed (${rc}): ${ARGV}\n${out}\n${err}")
  endif()
  message(STATUS "${out}")
endfunction()

if(INSTALL_FROM)
  run(${CMAKE_COMMAND} --install ${INSTALL_FROM} --prefix ${WORK}/prefix)
  if(NOT EXISTS ${WORK}/prefix/include/zss/zss.hpp)
    message(FATAL_ERROR "install did not place include/zss/zss.hpp under ${WORK}/prefix")
  endif()
endif()
run(${CMAKE_COMMAND} -S ${CONSUMER_SRC} -B ${WORK}/build -DCMAKE_CXX_COMPILER=${CXX} ${ZSS_PREFIX_ARG})
run(${CMAKE_COMMAND} --build ${WORK}/build)
run(${WORK}/build/consumer)
