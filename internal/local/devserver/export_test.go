package devserver

// devserverPushHandler exposes pushHandler to the external tests.
var DevserverPushHandler = pushHandler
