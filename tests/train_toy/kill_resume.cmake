# SPDX-License-Identifier: Apache-2.0
# Exact resume under SIGKILL (issue #12), run with cmake -P:
#   -DTOOL=<zss-train-toy> -DWORK=<empty scratch directory>
# 1. A: an uninterrupted run; A2: the same command again (same seed and thread count) -> the same
#    bytes (determinism run to run).
# 2. B: the same command killed with SIGKILL at several moments, each time continued with
#    --resume: mid-step (ZSS_TEST_FAULT=trainer.step), half-way through writing a checkpoint
#    (atomic_write.partial) and between the renames of the final outputs
#    (atomic_write.between_renames); after each kill every output that exists is complete; then a
#    last --resume without a fault. C: killed at an unpredictable time (timeout -s KILL 0.3: in
#    the world generation, a step or a write, or never if the machine is fast), then resumed.
# 3. B's and C's metrics.json, panels and checkpoint.zss equal A's byte for byte; timings.json
#    (wall-clock times) is the only output allowed to differ, and no temporary is left behind.
# 4. D: killed at step 51 of 52 without --checkpoint-every: the default (50) saved a checkpoint.
cmake_minimum_required(VERSION 3.20)  # script mode: today's policies
foreach(v TOOL WORK)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "kill_resume.cmake: ${v} is not set")
  endif()
endforeach()
file(REMOVE_RECURSE "${WORK}")
file(MAKE_DIRECTORY "${WORK}")
# A tiny run: 12 steps of 4 images (32 x 32), a checkpoint every 4 steps.
set(tiny ${TOOL} --quick --warmup 2 --batch 4 --height 32 --width 32 --train-images 16
    --test-images 4 --widths 8,16,16,16,16 --bank 16 --no-baseline --threads 2 --quiet)
set(run ${tiny} --steps 12 --checkpoint-every 4)
set(compared metrics.json checkpoint.zss panel_0.png panel_1.png)

function(run_to_end dir)
  execute_process(COMMAND ${run} --out ${dir} ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out
                  ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "run into ${dir} ${ARGN} failed (${rc}):\n${out}${err}")
  endif()
endfunction()

# Runs with ZSS_TEST_FAULT=<fault> (or under `timeout -s KILL <seconds>` when fault is "timer:<s>")
# and requires a death by SIGKILL, unless ALLOW_FINISH (a timer may fire after the run ended).
function(run_killed dir fault)
  cmake_parse_arguments(K "ALLOW_FINISH" "" "" ${ARGN})
  if(fault MATCHES "^timer:(.*)$")
    set(cmd timeout -s KILL ${CMAKE_MATCH_1} ${run} --out ${dir} ${K_UNPARSED_ARGUMENTS})
  else()
    set(cmd ${run} --out ${dir} ${K_UNPARSED_ARGUMENTS})
    set(ENV{ZSS_TEST_FAULT} ${fault})
  endif()
  execute_process(COMMAND ${cmd} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  unset(ENV{ZSS_TEST_FAULT})
  message(STATUS "killed at ${fault}: ${rc}")
  if(rc EQUAL 0 AND K_ALLOW_FINISH)
    file(REMOVE_RECURSE ${dir})  # the timer fired after the end: start the directory afresh
    return()
  endif()
  # execute_process reports SIGKILL as "Subprocess killed"; timeout reports it as 137.
  if(NOT (rc STREQUAL "Subprocess killed" OR rc EQUAL 137))
    message(FATAL_ERROR "expected a SIGKILL at ${fault}, got '${rc}':\n${out}${err}")
  endif()
endfunction()

# Every output that exists under its own name must be complete: the checkpoint loads (the next
# --resume proves it), and an existing metrics.json is the final one.
function(check_no_partial dir)
  if(EXISTS ${dir}/metrics.json)
    file(SHA256 ${dir}/metrics.json got)
    file(SHA256 ${WORK}/A/metrics.json want)
    if(NOT got STREQUAL want)
      message(FATAL_ERROR "${dir}/metrics.json exists but is not the final one")
    endif()
  endif()
endfunction()

run_to_end(${WORK}/A)
run_to_end(${WORK}/A2)

run_killed(${WORK}/B trainer.step:6)
check_no_partial(${WORK}/B)
if(NOT EXISTS ${WORK}/B/checkpoint.zss)
  message(FATAL_ERROR "no checkpoint after a kill at step 6 (one is saved every 4 steps)")
endif()
file(SHA256 ${WORK}/B/checkpoint.zss before_partial)
run_killed(${WORK}/B atomic_write.partial:1 --resume)
file(SHA256 ${WORK}/B/checkpoint.zss after_partial)
if(NOT before_partial STREQUAL after_partial)
  message(FATAL_ERROR "a kill half-way through a checkpoint write changed checkpoint.zss")
endif()
file(GLOB partial_tmp ${WORK}/B/.checkpoint.zss.tmp-*)
if(NOT partial_tmp)
  message(FATAL_ERROR "the kill did not happen during a checkpoint write (no temporary)")
endif()
run_killed(${WORK}/B atomic_write.between_renames:1 --resume)
check_no_partial(${WORK}/B)
run_to_end(${WORK}/B --resume)

run_killed(${WORK}/C timer:0.3 ALLOW_FINISH)
check_no_partial(${WORK}/C)
run_to_end(${WORK}/C --resume)

# D: without --checkpoint-every a run with --out still saves every 50 steps (issue #17: a kill
# used to lose everything before the end).
set(run ${tiny} --steps 52)
run_killed(${WORK}/D trainer.step:51)
if(NOT EXISTS ${WORK}/D/checkpoint.zss)
  message(FATAL_ERROR "no checkpoint after a kill at step 51 of a run with the default "
                      "--checkpoint-every (50)")
endif()

foreach(other A2 B C)
  foreach(f IN LISTS compared)
    file(SHA256 ${WORK}/A/${f} want)
    file(SHA256 ${WORK}/${other}/${f} got)
    if(NOT got STREQUAL want)
      message(FATAL_ERROR "${other}/${f} differs from the uninterrupted run's A/${f}")
    endif()
  endforeach()
  file(GLOB left ${WORK}/${other}/.*)
  if(left)
    message(FATAL_ERROR "files left behind in ${other}: ${left}")
  endif()
endforeach()
message(STATUS "resumed run equals the uninterrupted one: ${compared}")
