# SPDX-License-Identifier: Apache-2.0
# ctest entries of zss-train-toy: the --quick integration run and the error paths.
# zss_register_train_toy_tests(<path of the executable>)
function(zss_register_train_toy_tests exe)
  # Integration: GLM+PLM beats the seen-only baseline's mIoU(U) by a clear margin (fixed seed).
  add_test(NAME train_toy_quick
           COMMAND ${exe} --quick --seed 1 --threads 2 --require-unseen-gain 0.05)
  set_tests_properties(train_toy_quick PROPERTIES LABELS integration TIMEOUT 180)
  # PLM alone with the synthesizer recipe also beats it (DESIGN's synthesizer does not: README).
  add_test(NAME train_toy_quick_plm_recipe
           COMMAND ${exe} --quick --seed 1 --threads 2 --no-glm --synth-recipe --quiet --require-unseen-gain 0.05)
  set_tests_properties(train_toy_quick_plm_recipe PROPERTIES LABELS integration TIMEOUT 180)

  # Error paths: non-zero exit and a message on stderr.
  add_test(NAME train_toy_bad_steps COMMAND ${exe} --steps 0)
  add_test(NAME train_toy_bad_pool COMMAND ${exe} --pool nonsense)
  add_test(NAME train_toy_bad_lr COMMAND ${exe} --lr -1)
  add_test(NAME train_toy_bad_option COMMAND ${exe} --no-such-option)
  add_test(NAME train_toy_unwritable_out COMMAND ${exe} --quick --steps 1 --out /proc/zss-no-such-dir/x)
  add_test(NAME train_toy_resume_without_out COMMAND ${exe} --resume)
  add_test(NAME train_toy_bad_prototypes COMMAND ${exe} --prototypes nonsense)
  add_test(NAME train_toy_bad_syn_tau COMMAND ${exe} --syn-tau 0)
  foreach(t train_toy_bad_steps train_toy_bad_pool train_toy_bad_lr train_toy_bad_option train_toy_unwritable_out
            train_toy_resume_without_out train_toy_bad_prototypes train_toy_bad_syn_tau)
    set_tests_properties(${t} PROPERTIES WILL_FAIL TRUE LABELS error_path TIMEOUT 60)
  endforeach()
  # The message is there (a regex on the output; WILL_FAIL cannot check it, so a second entry).
  add_test(NAME train_toy_bad_steps_message COMMAND ${exe} --steps 0)
  set_tests_properties(train_toy_bad_steps_message PROPERTIES
                       PASS_REGULAR_EXPRESSION "steps" LABELS error_path TIMEOUT 60)
  add_test(NAME train_toy_bad_syn_tau_message COMMAND ${exe} --syn-tau 0)
  set_tests_properties(train_toy_bad_syn_tau_message PROPERTIES
                       PASS_REGULAR_EXPRESSION "syn-tau" LABELS error_path TIMEOUT 60)
  add_test(NAME train_toy_unwritable_out_message COMMAND ${exe} --quick --steps 1 --out /proc/zss-no-such-dir/x)
  set_tests_properties(train_toy_unwritable_out_message PROPERTIES
                       PASS_REGULAR_EXPRESSION "cannot (create|write)" LABELS error_path TIMEOUT 60)
endfunction()
