package acme

// ChallengeWait is how long a challenge POST waits for its validation.
const ChallengeWait = challengeWait
