# SPDX-License-Identifier: Apache-2.0
# A --resume that must be refused (issue #12), run with cmake -P:
#   -DTOOL=<zss-train-toy> -DBASE=<checkpoint.zss of the tiny run> -DWORK=<scratch directory>
#   -DCASE=corrupt|truncated|not_checkpoint|threads|config -DMESSAGE=<regex>
# WORK/checkpoint.zss is BASE's, damaged as CASE says (a flipped byte, cut in half, text) or
# resumed with another thread count or learning rate. The run must exit non-zero with a message
# naming the file and the problem, leave the checkpoint as it was and write no other output.
cmake_minimum_required(VERSION 3.20)  # script mode: today's policies
foreach(v TOOL BASE WORK CASE MESSAGE)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "bad_resume.cmake: ${v} is not set")
  endif()
endforeach()
file(REMOVE_RECURSE "${WORK}")
file(MAKE_DIRECTORY "${WORK}")
set(ckpt ${WORK}/checkpoint.zss)
file(COPY_FILE "${BASE}" "${ckpt}")
set(extra)
set(thread_count 2)
if(CASE STREQUAL "corrupt")
  execute_process(COMMAND sh -c "printf 'X' | dd of=\"$0\" bs=1 seek=5000 conv=notrunc 2>/dev/null"
                          "${ckpt}" COMMAND_ERROR_IS_FATAL ANY)
elseif(CASE STREQUAL "truncated")
  file(SIZE "${ckpt}" size)
  math(EXPR half "${size} / 2")
  execute_process(COMMAND truncate -s ${half} "${ckpt}" COMMAND_ERROR_IS_FATAL ANY)
elseif(CASE STREQUAL "not_checkpoint")
  file(WRITE "${ckpt}" "not a checkpoint\n")
elseif(CASE STREQUAL "threads")
  set(thread_count 1)
elseif(CASE STREQUAL "config")
  set(extra --lr 0.001)
else()
  message(FATAL_ERROR "unknown CASE ${CASE}")
endif()
file(SHA256 "${ckpt}" before)
execute_process(
  COMMAND ${TOOL} --quick --steps 12 --warmup 2 --batch 4 --height 32 --width 32 --train-images 16
          --test-images 4 --widths 8,16,16,16,16 --bank 16 --no-baseline --threads ${thread_count}
          --checkpoint-every 4 --quiet --out ${WORK} --resume ${extra}
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
message(STATUS "exit code ${rc}\n${out}${err}")
if(rc EQUAL 0 OR NOT rc MATCHES "^[0-9]+$")
  message(FATAL_ERROR "expected a non-zero exit code, got '${rc}'")
endif()
if(NOT "${out}${err}" MATCHES "${MESSAGE}")
  message(FATAL_ERROR "the output does not match ${MESSAGE}")
endif()
file(SHA256 "${ckpt}" after)
if(NOT before STREQUAL after)
  message(FATAL_ERROR "the refused resume changed checkpoint.zss")
endif()
file(GLOB written ${WORK}/*)
if(NOT written STREQUAL "${ckpt}")
  message(FATAL_ERROR "the refused resume wrote ${written}")
endif()
