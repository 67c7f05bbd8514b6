# SPDX-License-Identifier: Apache-2.0
# A short fuzz run (ctest's smoke test), with cmake -P:
#   -DFUZZER=<fuzz_x binary> -DCORPUS=<seed corpus in the repository> -DWORK=<scratch directory>
#   -DSECONDS=<time budget>
# New inputs go to WORK (never into the repository); a finding fails the test and leaves its
# input in WORK (crash-*, leak-*, oom-*, timeout-*) for fuzz/README.md's regression workflow.
cmake_minimum_required(VERSION 3.20)
file(REMOVE_RECURSE "${WORK}")
file(MAKE_DIRECTORY "${WORK}/corpus")
execute_process(
  COMMAND ${FUZZER} ${WORK}/corpus ${CORPUS} -max_total_time=${SECONDS} -timeout=10
          -rss_limit_mb=2048 -malloc_limit_mb=1024 -print_final_stats=1
          -artifact_prefix=${WORK}/
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
string(REGEX MATCH "stat::number_of_executed_units: *[0-9]+" runs "${err}")
message(STATUS "${FUZZER}: ${runs}, exit code ${rc}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "fuzzing found a problem:\n${err}")
endif()
