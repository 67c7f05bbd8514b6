# SPDX-License-Identifier: Apache-2.0
# Determinism of the tools (README "Determinism"), run with cmake -P:
#   -DKMEANS=<zss-kmeans> -DPSEUDO=<zss-pseudo-labels> -DIN=<inputs> -DOUT=<scratch directory>
# - zss-kmeans: the same input, seed and thread count give the same labels and centroids, byte
#   for byte, run to run;
# - zss-pseudo-labels: the same, and the same bytes for every thread count (each image's
#   multi-scale K-Means runs single-threaded, kmeans_batch).
cmake_minimum_required(VERSION 3.20)  # script mode: today's policies
file(REMOVE_RECURSE "${OUT}")
file(MAKE_DIRECTORY "${OUT}")
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${ARGN} failed (${rc}):\n${out}${err}")
  endif()
endfunction()
function(same a b)
  file(SHA256 "${a}" ha)
  file(SHA256 "${b}" hb)
  if(NOT ha STREQUAL hb)
    message(FATAL_ERROR "${a} and ${b} differ")
  endif()
endfunction()

foreach(r 1 2)
  run(${KMEANS} ${IN}/points.npy --k 3 --k 5 --seed 7 --threads 2 --labels ${OUT}/l${r}.npy
      --centroids ${OUT}/c${r}.npy)
  run(${KMEANS} ${IN}/tokens.npy --init window:4 --threads 2 --labels ${OUT}/w${r}.npy
      --centroids ${OUT}/wc${r}.npy)
endforeach()
foreach(f l-k3 l-k5 c-k3 c-k5 w wc)
  string(REPLACE "-" "1-" a "${f}")
  string(REPLACE "-" "2-" b "${f}")
  if(NOT f MATCHES "-")
    set(a ${f}1)
    set(b ${f}2)
  endif()
  same(${OUT}/${a}.npy ${OUT}/${b}.npy)
endforeach()

foreach(t 1 2 2)
  run(${PSEUDO} ${IN}/tokens.npy ${IN}/labels.npy --windows 2,4 --threads ${t}
      --out ${OUT}/p${t}.npy --png ${OUT}/p${t}.png)
  if(t EQUAL 2 AND EXISTS ${OUT}/p2_first.npy)
    same(${OUT}/p2.npy ${OUT}/p2_first.npy)
  elseif(t EQUAL 2)
    file(RENAME ${OUT}/p2.npy ${OUT}/p2_first.npy)
  endif()
endforeach()
same(${OUT}/p1.npy ${OUT}/p2_first.npy)
same(${OUT}/p1.png ${OUT}/p2.png)
message(STATUS "identical outputs run to run (zss-kmeans, zss-pseudo-labels) and across thread "
               "counts (zss-pseudo-labels)")
