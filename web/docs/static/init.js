// Starts Swagger UI on the server's own document. It is a file rather than
// an inline script so that the page's Content-Security-Policy can keep
// scripts to this origin.
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  // A pasted token is forgotten with the page: Swagger UI would keep it
  // in this origin's localStorage, where the dashboard's page scripts can
  // read it, and admin and worker tokens do not expire.
  persistAuthorization: false,
  // No badge fetched from validator.swagger.io: the page works offline and
  // the CSP allows no other origin.
  validatorUrl: null,
});
