# SPDX-License-Identifier: Apache-2.0
# The paper's ablation shape at a fixed seed in the quick configuration (issue #11), with margins
# that can fail. Run by ctest as
#   cmake -DEXE=<zss-train-toy> -DOUT=<dir> -DSEED=<s> -P ablation_shape.cmake
# It trains baseline, + GLM, + PLM and + GLM + PLM (one seed each, `--ablation`), then reads
# OUT/ablation.json and checks:
#   1. + PLM's mIoU(U) beats the seen-only baseline's by at least MIN_PLM_GAIN points;
#   2. + GLM + PLM's hIoU beats + GLM's;
#   3. the synthesizer's pure unseen pseudo regions have their own class's text embedding as the
#      nearest of all 21 for at least MIN_TOP1 of them (chance: 1/21 ≈ 4.8 %);
#   4. the teacher's own zero-shot (all 21 classes) lies in the calibration band of
#      docs/EXPERIMENTS.md: mIoU(S) and mIoU(U) in [25, 60] %.
foreach(v EXE OUT SEED)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "ablation_shape.cmake: -D${v}=... is required")
  endif()
endforeach()
if(NOT DEFINED MIN_PLM_GAIN)
  set(MIN_PLM_GAIN 30)
endif()
if(NOT DEFINED MIN_TOP1)
  set(MIN_TOP1 0.5)
endif()

file(REMOVE_RECURSE "${OUT}")
execute_process(
  COMMAND "${EXE}" --quick --ablation --seeds 1 --seed ${SEED} --arms baseline,glm,plm,glm+plm
          --threads 1 --quiet --out "${OUT}"
  RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "zss-train-toy --ablation exited with ${rc}")
endif()
file(READ "${OUT}/ablation.json" json)

# Arm name → its first run's mIoU(U), hIoU and (for + PLM) the probe's top-1 rate.
string(JSON n_arms LENGTH "${json}" arms)
math(EXPR last "${n_arms} - 1")
foreach(i RANGE ${last})
  string(JSON arm GET "${json}" arms ${i} arm)
  string(JSON u_${arm} GET "${json}" arms ${i} runs 0 miou_unseen)
  string(JSON h_${arm} GET "${json}" arms ${i} runs 0 hiou)
  if(arm STREQUAL "plm")
    string(JSON top1 GET "${json}" arms ${i} runs 0 probe top1_rate)
  endif()
endforeach()
string(JSON teacher_s GET "${json}" teacher runs 0 miou_seen)
string(JSON teacher_u GET "${json}" teacher runs 0 miou_unseen)

set(failed "")
# CMake's math() is integer-only: compare in hundredths of a percent.
macro(centi out value)
  set(_v "${value}")
  if(_v MATCHES "[eE]-")  # tiny numbers in exponent form count as 0
    set(_v 0)
  endif()
  if(NOT _v MATCHES "^([0-9]+)(\\.([0-9]*))?")
    message(FATAL_ERROR "ablation_shape.cmake: '${value}' is not a number in [0, 1]")
  endif()
  set(_int "${CMAKE_MATCH_1}")
  string(SUBSTRING "${CMAKE_MATCH_3}0000" 0 4 _frac)
  math(EXPR ${out} "${_int} * 10000 + 1${_frac} - 10000")  # value × 10⁴
endmacro()
centi(c_u_plm "${u_plm}")
centi(c_u_base "${u_baseline}")
centi(c_h_glmplm "${h_glm+plm}")
centi(c_h_glm "${h_glm}")
centi(c_top1 "${top1}")
centi(c_min_top1 "${MIN_TOP1}")
centi(c_ts "${teacher_s}")
centi(c_tu "${teacher_u}")
math(EXPR gain "${c_u_plm} - ${c_u_base}")
math(EXPR need "${MIN_PLM_GAIN} * 100")
message(STATUS "mIoU(U): + PLM ${u_plm}, baseline ${u_baseline}; hIoU: + GLM + PLM ${h_glm+plm}, "
               "+ GLM ${h_glm}; probe top-1 ${top1}; teacher mIoU(S) ${teacher_s} (U) ${teacher_u}")
if(gain LESS need)
  list(APPEND failed "+ PLM's mIoU(U) is not ${MIN_PLM_GAIN} points above the baseline's")
endif()
if(NOT c_h_glmplm GREATER c_h_glm)
  list(APPEND failed "+ GLM + PLM's hIoU is not above + GLM's")
endif()
if(c_top1 LESS c_min_top1)
  list(APPEND failed "the synthesizer's unseen prototypes are nearest their class for < ${MIN_TOP1}")
endif()
foreach(t c_ts c_tu)
  if(${t} LESS 2500 OR ${t} GREATER 6000)
    list(APPEND failed "the teacher's zero-shot (${t} = ${${t}} / 10⁴) is outside [0.25, 0.60]")
  endif()
endforeach()
if(failed)
  message(FATAL_ERROR "ablation shape: ${failed}")
endif()
