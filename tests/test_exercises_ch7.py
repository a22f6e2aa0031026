"""Chapter 7's exercise checkers: the stored solutions pass (test_exercises.py), and the mistakes
a learner would make are rejected."""

from exercise_tools import rejected

from gan_tutorial import exercises

# -- chapter 7 ----------------------------------------------------------------------------


def test_chapter7_rejects_the_usual_mistakes():
    good = exercises.solution("7.1")
    rejected("7.1", lambda psi, phi, v: (v * phi).sum(1, keepdim=True))  # the unconditional part forgotten
    rejected("7.1", lambda psi, phi, v: psi + (v * phi).sum(1), "shape")  # (B,) added to (B, 1)
    rejected("7.1", lambda psi, phi, v: psi * (v * phi).sum(1, keepdim=True))  # multiplied
    rejected("7.1", lambda psi, phi, v: psi + (v * phi).sum(0, keepdim=True).T[:6])  # summed over the batch
    assert good is not None
    rejected("7.2", lambda mu, lv: (mu**2 + lv.exp() - 1 - lv).sum(1))  # the half forgotten
    rejected("7.2", lambda mu, lv: 0.5 * (mu**2 + (0.5 * lv).exp() - 1 - lv).sum(1))  # sigma for sigma^2
    rejected("7.2", lambda mu, lv: 0.5 * (mu**2 + lv.exp() - 1 - lv).mean(1))  # a mean over dimensions
    rejected("7.2", lambda mu, lv: 0.5 * (mu**2 + lv.exp() - 1 + lv).sum(1))  # the log's sign
    rejected("7.3", lambda mu, lv, eps: mu + lv.exp() * eps)  # the variance, not the std
    rejected("7.3", lambda mu, lv, eps: mu + lv * eps)  # log variance as a scale
    rejected("7.3", lambda mu, lv, eps: (mu + (0.5 * lv).exp() * eps).detach(), "no gradient")
